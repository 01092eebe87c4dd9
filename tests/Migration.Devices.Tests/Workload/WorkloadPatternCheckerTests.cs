using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Xunit;

namespace Migration.Devices.Tests.Workload;

public sealed class WorkloadPatternCheckerTests
{
    private static (RamBlock, RamBlock) Blocks(byte[] firstBytes)
    {
        int half = firstBytes.Length / 2;
        var a = RamBlock.Create("ram0", half * 4096L);
        var b = RamBlock.Create("ram1", (firstBytes.Length - half) * 4096L);
        for (int i = 0; i < firstBytes.Length; i++)
        {
            RamBlock block = i < half ? a : b;
            block.Page(i < half ? i : i - half)[0] = firstBytes[i];
            block.Page(i < half ? i : i - half)[1] = (byte)i; // other bytes are not the pattern's business
        }
        return (a, b);
    }

    private static WorkloadCheckResult CheckImage(params byte[] firstBytes)
    {
        var (a, b) = Blocks(firstBytes);
        using (a)
        using (b)
            return WorkloadPatternChecker.Check([a, b]);
    }

    [Fact]
    public void Constant_image_is_consistent() => Assert.True(CheckImage(7, 7, 7, 7, 7, 7).Ok);

    [Fact]
    public void Image_stopped_mid_pass_with_one_step_down_is_consistent()
    {
        Assert.True(CheckImage(9, 9, 9, 8, 8, 8).Ok);
        Assert.True(CheckImage(0, 0, 255, 255, 255, 255).Ok); // the wrap of byte values
    }

    [Fact]
    public void Two_steps_are_torn_and_the_first_bad_page_is_named()
    {
        var r = CheckImage(9, 9, 8, 8, 7, 7);
        Assert.False(r.Ok);
        Assert.Equal(1, r.BadPages);
        Assert.Contains("page 1 of ram1: byte 7 after 8, expected 8", r.Message);
    }

    [Fact]
    public void A_jump_of_two_is_torn()
    {
        var r = CheckImage(9, 9, 7, 7, 7, 7);
        Assert.False(r.Ok);
        Assert.Contains("page 2 of ram0: byte 7 after 9, expected 9 or 8", r.Message);
    }

    [Fact]
    public void A_page_too_high_is_torn()
    {
        var r = CheckImage(5, 5, 5, 6, 5, 5);
        Assert.False(r.Ok);
        Assert.Equal(1, r.BadPages);
        Assert.Contains("page 0 of ram1: byte 6 after 5, expected 5 or 4", r.Message);
    }

    [Fact]
    public void Filled_ram_keeps_byte_zero_equal_for_every_pattern()
    {
        foreach (RamFillPattern pattern in Enum.GetValues<RamFillPattern>())
        {
            using var block = RamBlock.Create("ram0", 2048 * 4096);
            block.Page(3)[0] = 99;
            GuestRamFiller.Fill(block, pattern, seed: 5);
            Assert.True(WorkloadPatternChecker.Check([block]).Ok, pattern.ToString());
        }
    }
}
