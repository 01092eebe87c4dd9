using Migration.Actors.Source;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>The source's sender threads hash only a whole, aligned digest segment they sent (SourceRamDigests.OnSent).</summary>
public sealed class SourceRamDigestsTests
{
    private const int Pages = SegmentDigests.PagesPerSegment;

    [Fact]
    public async Task A_sender_hashes_a_whole_aligned_segment_it_sent_and_nothing_else()
    {
        using var block = RamBlock.Create("ram0", 4 * SegmentDigests.SegmentBytes);
        block.Page(Pages + 5).Fill(0x42);
        var digests = new SourceRamDigests([block]);

        digests.OnSent(0, Run(Pages, Pages), Pages); // segment 1, whole
        Assert.Equal(1, digests.HashedSegments);
        digests.OnSent(0, Run(Pages, Pages), Pages); // current already: not again
        Assert.Equal(1, digests.HashedSegments);

        digests.OnSent(0, Run(2 * Pages, Pages - 1), Pages - 1); // part of segment 2
        digests.OnSent(0, Run((2 * Pages) + 1, Pages), Pages); // a segment's worth, not aligned
        Assert.Equal(1, digests.HashedSegments);

        var final = await digests.ComputeFinalAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(block.ComputeDigest().ToString("x32"), Assert.Single(final));
        Assert.Equal(4, digests.HashedSegments); // the other three by the final digest
    }

    [Fact]
    public void Pages_that_are_one_segment_but_not_contiguous_are_left_to_the_refresh()
    {
        using var block = RamBlock.Create("ram0", 2 * SegmentDigests.SegmentBytes);
        var digests = new SourceRamDigests([block]);
        var pages = Run(0, Pages);
        pages[Pages - 1] = Pages; // the last page of the job is the first of segment 1
        digests.OnSent(0, pages, Pages);
        Assert.Equal(0, digests.HashedSegments);
    }

    [Fact]
    public void A_larger_packet_hashes_every_whole_segment_it_covers_and_no_partial_one()
    {
        using var block = RamBlock.Create("ram0", 4 * SegmentDigests.SegmentBytes);
        var digests = new SourceRamDigests([block]);
        // Pages 64 .. 64 + 3 segments: segments 1 and 2 whole, 0 and 3 in part.
        digests.OnSent(0, Run(Pages / 2, 3 * Pages), 3 * Pages);
        Assert.Equal(2, digests.HashedSegments);

        // Two runs in one packet: segment 0 whole in the first, segment 3 whole in the second.
        digests.OnSent(0, Run(0, Pages).Concat(Run(3 * Pages, Pages)).ToArray(), 2 * Pages);
        Assert.Equal(4, digests.HashedSegments);
    }

    private static long[] Run(long first, int count) => Enumerable.Range(0, count).Select(i => first + i).ToArray();
}
