using System.Runtime.InteropServices;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

/// <summary>
/// The populator faults fresh RAM in just ahead of ascending writers (the receive loops), never changes a byte, starts
/// only with the first page written with content, and skips blocks whose memory is already touched.
/// Residency is read from the kernel (mincore), not from the populator's own count.
/// </summary>
public sealed partial class RamPopulatorTests
{
    private const long Ahead = 2 * RamPopulator.SliceBytes;
    private const long HugePagePages = 512; // 2 MiB: THP faults whole huge pages
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60); // a loaded machine; the assertions are about what, not how fast

    [Fact]
    public async Task Fresh_memory_ahead_of_the_highest_written_page_is_faulted_in_and_nothing_beyond_the_window()
    {
        using var block = RamBlock.Create("ram0", 8 * RamPopulator.SliceBytes);
        using var populator = new RamPopulator([block], [true], Ahead);
        var written = 10 * 1024L; // 40 MiB written so far, in ascending order
        block.Pages(0, (int)written).Fill(0x5A);
        populator.OnWritten(0, written - 1);

        var aheadPages = Ahead / RamBlock.PageSize;
        await WaitUntil(() => populator.PopulatedBytes >= Ahead);
        Assert.Equal(Ahead, populator.PopulatedBytes);
        Assert.Equal(aheadPages, ResidentPages(block, written, aheadPages));
        var beyond = written + aheadPages + HugePagePages; // a huge page may extend past the window's end
        Assert.Equal(0, ResidentPages(block, beyond, block.PageCount - beyond));
        Assert.True(block.Pages(0, (int)written).IndexOfAnyExcept((byte)0x5A) < 0);
    }

    [Fact]
    public async Task Populating_never_changes_bytes_a_lagging_writer_already_put_ahead_of_the_frontier()
    {
        using var block = RamBlock.Create("ram0", 4 * RamPopulator.SliceBytes);
        // Another channel already wrote pages inside the window (its packet was later in the address order).
        var lagging = 3 * 1024L;
        block.Pages(lagging, 256).Fill(0xC7);
        using var populator = new RamPopulator([block], [true], Ahead);
        populator.OnWritten(0, 0);

        await WaitUntil(() => populator.PopulatedBytes >= Ahead);
        Assert.True(block.Pages(lagging, 256).IndexOfAnyExcept((byte)0xC7) < 0);
        Assert.True(block.Pages(lagging + 256, 1024).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public async Task Nothing_is_populated_before_a_page_with_content_arrives_and_touched_blocks_are_skipped()
    {
        using var pooled = RamBlock.Create("ram0", RamPopulator.SliceBytes);
        using var fresh = RamBlock.Create("ram1", 4 * RamPopulator.SliceBytes);
        using var populator = new RamPopulator([pooled, fresh], [false, true], Ahead);
        await Task.Delay(200);
        Assert.Equal(0, populator.PopulatedBytes);
        Assert.Equal(0, ResidentPages(fresh, 0, fresh.PageCount));

        populator.OnWritten(0, 0); // the first page of the pooled block: the window spans into the fresh block
        var inFresh = Ahead - RamPopulator.SliceBytes + RamBlock.PageSize;
        await WaitUntil(() => populator.PopulatedBytes >= inFresh);
        Assert.Equal(inFresh, populator.PopulatedBytes);
        var resident = ResidentPages(fresh, 0, fresh.PageCount);
        Assert.InRange(resident, inFresh / RamBlock.PageSize, (inFresh / RamBlock.PageSize) + HugePagePages); // the last huge page may be whole
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }

    /// <summary>Pages of [first, first+count) resident in memory, as the kernel reports them.</summary>
    private static unsafe long ResidentPages(RamBlock block, long first, long count)
    {
        Assert.True(OperatingSystem.IsLinux(), "mincore: Linux only");
        var vector = new byte[count];
        fixed (byte* v = vector)
        {
            Assert.Equal(0, mincore(block.BasePointer + (first * RamBlock.PageSize), (nuint)(count * RamBlock.PageSize), v));
        }

        return vector.Count(b => (b & 1) != 0);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int mincore(byte* addr, nuint length, byte* vec);
}
