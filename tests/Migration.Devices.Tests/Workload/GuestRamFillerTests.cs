using System.Diagnostics;
using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Xunit;

namespace Migration.Devices.Tests.Workload;

[Collection(TimingSensitive.Name)]
public sealed class GuestRamFillerTests
{
    [Fact]
    public void Fill_is_deterministic_per_seed()
    {
        using var a = RamBlock.Create("a", 1024 * 4096);
        using var b = RamBlock.Create("b", 1024 * 4096);
        using var c = RamBlock.Create("c", 1024 * 4096);
        GuestRamFiller.Fill(a, RamFillPattern.Mixed, 1);
        GuestRamFiller.Fill(b, RamFillPattern.Mixed, 1);
        GuestRamFiller.Fill(c, RamFillPattern.Mixed, 2);
        Assert.Equal(a.ComputeDigest(), b.ComputeDigest());
        Assert.NotEqual(a.ComputeDigest(), c.ComputeDigest());
    }

    [Fact]
    public void Zero90_leaves_about_ninety_percent_of_pages_all_zero()
    {
        using var block = RamBlock.Create("ram0", 4096 * 4096);
        new Random(3).NextBytes(block.Pages(0, 4096)); // previous garbage must be cleared
        GuestRamFiller.Fill(block, RamFillPattern.Zero90, 3);
        int zero = 0;
        for (int p = 0; p < block.PageCount; p++)
            if (!block.Page(p).ContainsAnyExcept((byte)0)) zero++;
        Assert.InRange(zero / (double)block.PageCount, 0.87, 0.93);
    }

    [Fact]
    public void Mixed_has_zero_text_and_random_pages()
    {
        using var block = RamBlock.Create("ram0", 1000 * 4096);
        GuestRamFiller.Fill(block, RamFillPattern.Mixed, 9);
        var kinds = Enumerable.Range(0, 1000).Select(p => GuestRamFiller.KindOf(RamFillPattern.Mixed, 9, p)).ToList();
        int text = kinds.IndexOf(GuestRamFiller.PageKind.Text);
        int zero = kinds.IndexOf(GuestRamFiller.PageKind.Zero);
        Assert.True(text >= 0 && zero >= 0);
        Assert.False(block.Page(zero).ContainsAnyExcept((byte)0));
        Assert.All(block.Page(text)[1..].ToArray(), b => Assert.True(b == '\n' || (b >= 0x20 && b < 0x7f)));
    }

    /// <summary>A refill replaces the previous pattern everywhere (speed is measured by benchmarks, not here).</summary>
    [Fact]
    public void Random_fill_over_a_zero90_block_leaves_no_zero_page()
    {
        using var block = RamBlock.Create("ram0", 16L << 20);
        GuestRamFiller.Fill(block, RamFillPattern.Zero90, 1);
        GuestRamFiller.Fill(block, RamFillPattern.Random, 1);
        for (long p = 0; p < block.PageCount; p++)
        {
            Assert.True(block.Page(p)[1..].ContainsAnyExcept((byte)0), $"page {p} is still zero");
            Assert.Equal(0, block.Page(p)[0]);
        }
    }
}
