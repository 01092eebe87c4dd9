using Migration.Actors.Destination;
using Migration.Devices.Ram;
using Migration.Transport.ZeroPages;
using Xunit;

namespace Migration.Actors.Tests.Destination;

/// <summary>
/// A guest built over pooled memory that held another guest's bytes: every page is either received or zero before it
/// resumes, and the digests equal a full recomputation.
/// </summary>
public sealed class IncomingRamTrackerTests
{
    private const long BlockBytes = 2 * SegmentDigests.SegmentBytes + 8 * RamBlock.PageSize;

    [Fact]
    public async Task Every_page_of_a_recycled_block_is_either_received_or_zero_when_the_tracker_finishes()
    {
        using var pool = new GuestMemoryPool(1L << 30, TimeSpan.Zero);
        var former = RamBlock.Create("former", BlockBytes);
        former.Pages(0, former.PageCount).Fill(0xAB); // the former guest's bytes, on every page
        pool.Return(former);
        using var block = pool.TryTake("ram0", BlockBytes)!;
        Assert.True(block.Recycled);

        using var tracker = new IncomingRamTracker([block], [true], TimeSpan.FromMilliseconds(5));
        var random = new Random(17);
        var received = new HashSet<long>();
        var offsets = new List<ulong>();
        // Packets as the receive loops deliver them: ascending pages, some with content, some zero-page markers
        // that happen to find the former bytes (the loop clears those).
        for (var packet = 0; packet < 400; packet++)
        {
            offsets.Clear();
            var page = random.NextInt64(block.PageCount - 64);
            for (var i = 0; i < random.Next(1, 32); i++, page += random.Next(1, 3))
            {
                if (random.Next(4) == 0)
                {
                    block.Page(page).Clear();
                }
                else
                {
                    block.Page(page).Fill((byte)(1 + (page % 200)));
                }

                offsets.Add((ulong)page << RamBlock.PageShift);
                received.Add(page);
            }

            tracker.OnPagesWritten(0, offsets.ToArray(), offsets.Count);
        }

        var digests = await tracker.FinishAsync().WaitAsync(TimeSpan.FromSeconds(60));

        for (long p = 0; p < block.PageCount; p++)
        {
            var bytes = block.Page(p);
            if (received.Contains(p))
            {
                Assert.True(bytes[0] == 0 || bytes[0] == (byte)(1 + (p % 200)), $"received page {p} was changed");
            }
            else
            {
                Assert.True(ZeroPageDetector.IsAllZero(bytes), $"page {p} was never received but still holds the former guest's bytes");
            }
        }

        Assert.Equal(block.PageCount - received.Count, tracker.ScrubbedPages);
        Assert.Equal(block.ComputeDigest().ToString("x32"), Assert.Single(digests));
    }

    [Fact]
    public async Task Fresh_memory_is_not_scrubbed_and_only_written_segments_are_hashed_once_they_went_quiet()
    {
        using var block = RamBlock.Create("ram0", BlockBytes);
        using var tracker = new IncomingRamTracker([block], [false], TimeSpan.FromMilliseconds(5));
        block.Page(1).Fill(7);
        tracker.OnPagesWritten(0, [1UL << RamBlock.PageShift], 1);

        // Only the written segment is due; it goes quiet and is hashed in the background. The other segments were
        // never written: they keep the digest of zeros and are never read.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (tracker.HashedSegments < 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(1, tracker.HashedSegments);
        var digests = await tracker.FinishAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, tracker.HashedSegments); // nothing left to hash at the end
        Assert.Equal(0, tracker.ScrubbedPages);
        Assert.Equal(block.ComputeDigest().ToString("x32"), Assert.Single(digests));
    }

    [Fact]
    public async Task Segments_that_receive_only_zero_pages_are_not_hashed_and_the_digest_equals_a_full_recomputation()
    {
        using var block = RamBlock.Create("ram0", BlockBytes);
        using var tracker = new IncomingRamTracker([block], [false], TimeSpan.FromMilliseconds(5));
        var pagesPerSegment = SegmentDigests.SegmentBytes / RamBlock.PageSize;
        // Segment 0: zero pages only. Segment 1: zero pages and one page with content, in the same packet.
        tracker.OnPagesWritten(0, [0UL, 1UL << RamBlock.PageShift, 2UL << RamBlock.PageShift], normalPages: 0);
        block.Page(pagesPerSegment + 1).Fill(3);
        tracker.OnPagesWritten(0, [(ulong)(pagesPerSegment + 1) << RamBlock.PageShift, (ulong)(pagesPerSegment + 2) << RamBlock.PageShift], normalPages: 1);

        var digests = await tracker.FinishAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(block.ComputeDigest().ToString("x32"), Assert.Single(digests));
        Assert.Equal(1, tracker.HashedSegments); // segment 1 only
        Assert.True(tracker.ZeroSegments >= 1, "segment 0 got the digest of zeros without a read");
    }

    [Fact]
    public void A_fresh_page_is_known_zero_until_content_is_announced_for_it_and_recycled_memory_never_is()
    {
        using var fresh = RamBlock.Create("ram0", BlockBytes);
        using var pool = new GuestMemoryPool(1L << 30, TimeSpan.Zero);
        pool.Return(RamBlock.Create("former", BlockBytes));
        using var recycled = pool.TryTake("ram1", BlockBytes)!;
        using var tracker = new IncomingRamTracker([fresh, recycled], [false, true], TimeSpan.FromMilliseconds(5));

        Assert.False(tracker.MayHoldData(0, 5));
        // Zero pages delivered do not make a page hold data; content announced before it lands does.
        tracker.OnPagesWritten(0, [5UL << RamBlock.PageShift], normalPages: 0);
        Assert.False(tracker.MayHoldData(0, 5));
        tracker.OnPagesArriving(0, [5UL << RamBlock.PageShift, 9UL << RamBlock.PageShift]);
        Assert.True(tracker.MayHoldData(0, 5));
        Assert.True(tracker.MayHoldData(0, 9));
        Assert.False(tracker.MayHoldData(0, 6));

        // A recycled block may hold a former guest's bytes on any page.
        Assert.True(tracker.MayHoldData(1, 0));
        Assert.True(tracker.MayHoldData(1, recycled.PageCount - 1));
    }

    [Fact]
    public async Task A_recycled_block_that_receives_zero_pages_over_former_bytes_ends_all_zero_without_hashing()
    {
        using var pool = new GuestMemoryPool(1L << 30, TimeSpan.Zero);
        var former = RamBlock.Create("former", BlockBytes);
        former.Pages(0, former.PageCount).Fill(0xAB);
        pool.Return(former);
        using var block = pool.TryTake("ram0", BlockBytes)!;
        Assert.True(block.Recycled);
        using var zeros = RamBlock.Create("zeros", BlockBytes);

        using var tracker = new IncomingRamTracker([block], [true], TimeSpan.FromMilliseconds(5));
        // The receive loop clears a zero page that finds former bytes, then reports it; the rest is scrubbed.
        block.Page(7).Clear();
        block.Page(8).Clear();
        tracker.OnPagesWritten(0, [7UL << RamBlock.PageShift, 8UL << RamBlock.PageShift], normalPages: 0);
        var digests = await tracker.FinishAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(ZeroPageDetector.IsAllZero(block.Pages(0, block.PageCount)));
        Assert.Equal(zeros.ComputeDigest().ToString("x32"), Assert.Single(digests));
        Assert.Equal(0, tracker.HashedSegments);
    }

    [Fact]
    public async Task A_recycled_block_that_receives_nothing_is_zeroed_and_its_digest_is_that_of_zeros()
    {
        using var pool = new GuestMemoryPool(1L << 30, TimeSpan.Zero);
        var former = RamBlock.Create("former", BlockBytes);
        former.Page(3).Fill(0xAB);
        former.Page(former.PageCount - 1).Fill(0xCD); // the short last segment
        pool.Return(former);
        using var block = pool.TryTake("ram0", BlockBytes)!;
        Assert.True(block.Recycled);
        using var zeros = RamBlock.Create("zeros", BlockBytes);

        using var tracker = new IncomingRamTracker([block], [true], TimeSpan.FromMilliseconds(5));
        var digests = await tracker.FinishAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, tracker.ScrubbedPages);
        Assert.True(ZeroPageDetector.IsAllZero(block.Pages(0, block.PageCount)));
        Assert.Equal(zeros.ComputeDigest().ToString("x32"), Assert.Single(digests));
        Assert.Equal(block.ComputeDigest().ToString("x32"), digests[0]);
    }

    [Fact]
    public async Task Fresh_blocks_are_populated_ahead_of_pages_with_content_and_never_for_zero_pages_alone()
    {
        using var block = RamBlock.Create("ram0", 80L << 20); // room for 64 MiB ahead of page 2
        using var tracker = new IncomingRamTracker([block], [false], TimeSpan.FromMilliseconds(5), populateAheadBytes: 64L << 20);
        tracker.OnPagesWritten(0, [0UL, 1UL << RamBlock.PageShift], normalPages: 0); // zero pages only
        await Task.Delay(200);
        Assert.Equal(0, tracker.PopulatedBytes);

        block.Page(2).Fill(9);
        tracker.OnPagesWritten(0, [2UL << RamBlock.PageShift], normalPages: 1);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (tracker.PopulatedBytes < (64L << 20) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(64L << 20, tracker.PopulatedBytes); // pages 3 .. 3 + 64 MiB, no more
        var digests = await tracker.FinishAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(block.ComputeDigest().ToString("x32"), Assert.Single(digests)); // populating changed no byte
    }

    [Fact]
    public async Task A_tracker_over_pooled_memory_only_populates_nothing()
    {
        using var pool = new GuestMemoryPool(1L << 30, TimeSpan.Zero);
        pool.Return(RamBlock.Create("former", BlockBytes));
        using var block = pool.TryTake("ram0", BlockBytes)!;
        using var tracker = new IncomingRamTracker([block], [true], TimeSpan.FromMilliseconds(5), populateAheadBytes: 64L << 20);
        tracker.OnPagesWritten(0, [0UL], normalPages: 1);
        await Task.Delay(200); // time for a populator, were there one
        Assert.Equal(0, tracker.PopulatedBytes);
    }
}
