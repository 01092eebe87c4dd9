using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

/// <summary>Incremental per-segment digests against a full recomputation (RamBlock.ComputeDigest).</summary>
public sealed class SegmentDigestsTests
{
    // 3 full 512 KiB segments and a short fourth one (12 KiB), so the partial last segment is covered too.
    private const long BlockBytes = 3 * SegmentDigests.SegmentBytes + 3 * RamBlock.PageSize;

    [Fact]
    public void Incremental_digest_equals_full_recomputation_over_random_dirtying_synced_from_the_bitmap()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        var snapshot = block.Dirty.CreateSnapshotBuffer();
        var random = new Random(9);
        Span<byte> data = stackalloc byte[64];
        for (var round = 0; round < 12; round++)
        {
            var writes = random.Next(0, 6);
            for (var w = 0; w < writes; w++)
            {
                random.NextBytes(data);
                block.Write(random.NextInt64(block.PageCount), random.Next(0, RamBlock.PageSize - data.Length), data);
            }

            block.Dirty.FetchAndClear(snapshot);
            digests.MarkFetched(snapshot);
            if (random.Next(2) == 0)
            {
                digests.Refresh(settledOnly: random.Next(2) == 0, parallel: false);
            }

            Assert.Equal(block.ComputeDigest(), digests.Compute());
        }
    }

    [Fact]
    public void Assuming_zero_equals_full_recomputation_and_hashes_only_the_segments_written_after_it()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        digests.AssumeZero();
        Assert.Equal(0, digests.StaleSegments);
        Assert.Equal(block.ComputeDigest(), digests.Compute()); // all zeros, nothing read
        Assert.Equal(0, digests.HashedSegments);

        var pagesPerSegment = SegmentDigests.SegmentBytes / RamBlock.PageSize;
        block.Page(pagesPerSegment + 9).Fill(0x3C);
        digests.MarkWritten(pagesPerSegment + 9, 1);
        block.Page(block.PageCount - 1).Fill(0xC3); // the short last segment
        digests.MarkWritten(block.PageCount - 1, 1);

        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.Equal(2, digests.HashedSegments);
    }

    [Fact]
    public void The_digest_of_zeros_equals_hashing_zero_memory_for_full_and_short_segments()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        Assert.Equal(SegmentHashes.HashSegment(block, 0), SegmentHashes.ZeroDigest(SegmentDigests.SegmentBytes));
        Assert.Equal(SegmentHashes.HashSegment(block, 3), SegmentHashes.ZeroDigest(3 * RamBlock.PageSize));
        Assert.NotEqual(SegmentHashes.ZeroDigest(RamBlock.PageSize), SegmentHashes.ZeroDigest(2 * RamBlock.PageSize));
    }

    [Fact]
    public void HashIfDue_hashes_a_marked_segment_once_and_rejects_an_index_beyond_the_block()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block); // every segment marked
        Assert.True(digests.HashIfDue(1));
        Assert.False(digests.HashIfDue(1)); // current now: nothing to do
        Assert.Equal(1, digests.HashedSegments);
        Assert.Equal(digests.Count - 1, digests.StaleSegments);
        Assert.Throws<ArgumentOutOfRangeException>(() => digests.HashIfDue(digests.Count));
        Assert.Throws<ArgumentOutOfRangeException>(() => digests.HashIfDue(-1));
        Assert.Equal(block.ComputeDigest(), digests.Compute());
    }

    [Fact]
    public async Task Senders_hashing_while_the_guest_dirties_and_syncs_and_during_the_final_digest_equal_a_full_recomputation()
    {
        // 64 segments; four "sender" threads call HashIfDue on random segments all the time, this thread writes random
        // pages, syncs the dirty bitmap into marks and sometimes runs a refresh, as the source does. Then the writer
        // stops and Compute runs while the senders are still hashing: it must equal a full recomputation.
        const int segments = 64;
        using var block = RamBlock.Create("seg", segments * SegmentDigests.SegmentBytes);
        var digests = new SegmentDigests(block);
        var snapshot = block.Dirty.CreateSnapshotBuffer();
        using var stop = new CancellationTokenSource();
        using var started = new CountdownEvent(4);
        var taken = new long[4];
        var senders = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            var random = new Random(100 + t);
            started.Signal();
            while (!stop.IsCancellationRequested)
            {
                taken[t] += digests.HashIfDue(random.Next(segments)) ? 1 : 0;
            }
        }) { IsBackground = true }).ToArray();
        foreach (var sender in senders)
        {
            sender.Start();
        }

        Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "sender threads started");
        var writes = new Random(5);
        var data = new byte[256];
        for (var round = 0; round < 2000; round++)
        {
            for (var w = 0; w < 8; w++)
            {
                writes.NextBytes(data);
                var page = writes.NextInt64(block.PageCount);
                block.Write(page, writes.Next(0, RamBlock.PageSize - data.Length), data);
            }

            block.Dirty.FetchAndClear(snapshot);
            digests.MarkFetched(snapshot);
            if (round % 10 == 0)
            {
                digests.Refresh(settledOnly: true, parallel: false);
            }

            Thread.Yield(); // let the senders in on a machine with few cores
        }

        block.Dirty.FetchAndClear(snapshot); // the final sync of the paused guest
        digests.MarkFetched(snapshot);
        var final = digests.Compute(); // the senders are still hashing
        await stop.CancelAsync();
        foreach (var sender in senders)
        {
            Assert.True(sender.Join(TimeSpan.FromSeconds(30)), "sender thread ended");
        }

        Assert.Equal(block.ComputeDigest(), final);
        Assert.True(taken.Sum() > 0, "the senders hashed segments");
    }

    [Fact]
    public void The_final_digest_waits_for_a_sender_that_is_hashing_a_segment_at_that_moment()
    {
        // Round after round: segment 0 gets new content and is marked; then a sender's HashIfDue(0) and Compute start
        // together. Whichever takes the segment, Compute must return the digest of the new content, also when the
        // sender took it and is still hashing as Compute combines.
        using var block = RamBlock.Create("seg", 4 * SegmentDigests.SegmentBytes);
        var digests = new SegmentDigests(block);
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        var snapshot = block.Dirty.CreateSnapshotBuffer();
        using var go = new Barrier(2);
        var rounds = 500;
        var sender = new Thread(() =>
        {
            for (var r = 0; r < rounds; r++)
            {
                go.SignalAndWait();
                digests.HashIfDue(0);
                go.SignalAndWait();
            }
        }) { IsBackground = true };
        sender.Start();
        var data = new byte[8];
        var delay = new Random(3);
        for (var r = 0; r < rounds; r++)
        {
            BitConverter.TryWriteBytes(data, (long)r + 1);
            block.Write(r % SegmentDigests.PagesPerSegment, 64, data);
            block.Dirty.FetchAndClear(snapshot);
            digests.MarkFetched(snapshot);
            go.SignalAndWait();
            Thread.SpinWait(delay.Next(0, 20_000)); // sometimes the sender takes the segment first, sometimes Compute
            var final = digests.Compute();
            go.SignalAndWait();
            Assert.Equal(block.ComputeDigest(), final);
        }

        Assert.True(sender.Join(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void A_segment_hash_is_XxHash128_of_its_bytes_as_a_streaming_hash_over_pages_computes_it()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var random = new Random(4);
        var page = new byte[RamBlock.PageSize];
        foreach (var p in new long[] { 0, 17, SegmentDigests.SegmentBytes / RamBlock.PageSize - 1, block.PageCount - 2, block.PageCount - 1 })
        {
            random.NextBytes(page);
            block.Write(p, 0, page);
        }

        foreach (var segment in new[] { 0, 3 }) // a full segment and the short last one
        {
            var expected = new System.IO.Hashing.XxHash128();
            var first = segment * SegmentDigests.SegmentBytes / RamBlock.PageSize;
            var last = Math.Min(block.PageCount, first + SegmentDigests.SegmentBytes / RamBlock.PageSize);
            for (var p = first; p < last; p++)
            {
                expected.Append(block.Page(p));
            }

            Assert.Equal(expected.GetCurrentHashAsUInt128(), SegmentHashes.HashSegment(block, segment));
        }
    }

    [Fact]
    public void BytesToHash_counts_the_stale_segments_and_those_with_a_live_dirty_page_as_the_final_digest_would_hash_them()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        // Nothing hashed yet: every segment (the short fourth one at its length).
        Assert.Equal(BlockBytes, digests.BytesToHash(block.Dirty));
        digests.Refresh(settledOnly: false, parallel: false);
        Assert.Equal(0, digests.BytesToHash(block.Dirty));

        // A guest write not synced yet (live bitmap, segment 1) and a stale segment (written and marked, segment 3).
        var pagesPerSegment = SegmentDigests.SegmentBytes / RamBlock.PageSize;
        block.MarkDirty(pagesPerSegment + 3);
        block.Page(block.PageCount - 1)[0] = 0x5A;
        digests.MarkWritten(block.PageCount - 1, 1);
        Assert.Equal(SegmentDigests.SegmentBytes + (3 * RamBlock.PageSize), digests.BytesToHash(block.Dirty));

        // What Compute hashes once the live page is synced: exactly those two segments.
        var snapshot = block.Dirty.CreateSnapshotBuffer();
        block.Dirty.FetchAndClear(snapshot);
        digests.MarkFetched(snapshot);
        var before = digests.HashedSegments;
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.Equal(2, digests.HashedSegments - before);
    }

    [Fact]
    public void A_refresh_hashes_only_the_segments_written_since_the_last_one()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        Assert.Equal(4, digests.Refresh(settledOnly: false, parallel: true));
        Assert.Equal(0, digests.Refresh(settledOnly: false, parallel: true));

        var pagesPerSegment = SegmentDigests.SegmentBytes / RamBlock.PageSize;
        block.Page(2 * pagesPerSegment + 5)[7] = 0xA5;
        digests.MarkWritten(2 * pagesPerSegment + 5, 1);
        block.Page(block.PageCount - 1)[0] = 0x5A;
        digests.MarkWritten(block.PageCount - 1, 1);

        var before = digests.HashedSegments;
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.Equal(2, digests.HashedSegments - before);
    }

    [Fact]
    public void A_settled_refresh_skips_segments_marked_since_the_previous_refresh_and_hashes_them_in_the_next()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        digests.Refresh(settledOnly: false, parallel: false);
        block.Page(1)[0] = 1;
        digests.MarkWritten(1, 1);

        Assert.Equal(0, digests.Refresh(settledOnly: true, parallel: false));
        Assert.Equal(1, digests.Refresh(settledOnly: true, parallel: false));
        Assert.Equal(0, digests.StaleSegments);
        Assert.Equal(block.ComputeDigest(), digests.Compute());
    }

    [Fact]
    public async Task Writes_concurrent_with_background_refreshes_are_never_lost()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        using var stop = new CancellationTokenSource();
        var refresher = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                digests.Refresh(settledOnly: false, parallel: false);
            }
        });

        var random = new Random(4);
        for (var i = 0; i < 20_000; i++)
        {
            var page = random.NextInt64(block.PageCount);
            block.Page(page)[random.Next(RamBlock.PageSize)] = (byte)random.Next(1, 256);
            digests.MarkWritten(page, 1); // write-then-mark, as the receive loops do
        }

        stop.Cancel();
        await refresher;
        Assert.Equal(block.ComputeDigest(), digests.Compute());
    }

    [Fact]
    public void A_stopped_refresh_leaves_the_segments_it_did_not_hash_marked_for_the_final_compute()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        block.Page(0)[0] = 9;
        Assert.Equal(0, digests.Refresh(settledOnly: false, parallel: false, new CancellationToken(canceled: true)));
        Assert.Equal(4, digests.StaleSegments);
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.Equal(0, digests.StaleSegments);
    }

    [Fact]
    public async Task Segments_waiting_in_a_running_refresh_still_count_as_stale()
    {
        // 1024 segments (512 MiB) hashed one after the other on another thread; this thread polls meanwhile. Every
        // segment is stale, being hashed (at most one), or hashed: so stale + hashed >= total - 1 at every poll
        // (stale read first). Clearing every mark up front, as a refresh once did, reads 0 stale while most are
        // still waiting. No timing is asserted: a poll after the refresh ended holds trivially.
        const int segments = 1024;
        using var block = RamBlock.Create("seg", segments * SegmentDigests.SegmentBytes);
        var digests = new SegmentDigests(block);
        var refresh = Task.Run(() => digests.Refresh(settledOnly: false, parallel: false));
        var polls = 0;
        while (!refresh.IsCompleted)
        {
            var stale = digests.StaleSegments;
            var hashed = digests.HashedSegments;
            Assert.True(stale + hashed >= segments - 1, $"poll {polls}: {stale} stale + {hashed} hashed of {segments}");
            polls++;
        }

        Assert.Equal(segments, await refresh);
        Assert.Equal(0, digests.StaleSegments);
        Assert.Equal(segments, digests.HashedSegments);
    }

    [Fact]
    public void Segments_written_only_with_zeros_stay_known_zero_and_are_not_read_until_they_get_content()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        digests.AssumeZero();
        var pagesPerSegment = SegmentDigests.SegmentBytes / RamBlock.PageSize;
        digests.MarkZeroWritten(0, 2 * pagesPerSegment); // zero pages over segments 0 and 1
        digests.MarkZeroWritten(block.PageCount - 1, 1); // and the short last segment
        Assert.Equal(3, digests.StaleSegments);

        // Not read: bytes that are there now (a recycled block before its scrub) do not enter the digest.
        block.Page(5).Fill(0x5A);
        var zeros = digests.Compute();
        block.Page(5).Clear();
        Assert.Equal(block.ComputeDigest(), zeros);
        Assert.Equal(0, digests.HashedSegments);
        Assert.Equal(3, digests.ZeroSegments);

        // Content in segment 1 makes it a hashed segment from then on, zero pages after it included.
        block.Page(pagesPerSegment + 3).Fill(0x77);
        digests.MarkWritten(pagesPerSegment + 3, 1);
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.Equal(1, digests.HashedSegments);
        block.Page(pagesPerSegment + 4).Fill(0x11);
        block.Page(pagesPerSegment + 3).Clear();
        digests.MarkZeroWritten(pagesPerSegment + 3, 1);
        digests.MarkWritten(pagesPerSegment + 4, 1);
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.Equal(2, digests.HashedSegments);
    }

    [Fact]
    public async Task Zero_and_content_writes_concurrent_with_background_refreshes_equal_a_full_recomputation()
    {
        using var block = RamBlock.Create("seg", BlockBytes);
        var digests = new SegmentDigests(block);
        digests.AssumeZero(); // fresh memory: all zero
        using var stop = new CancellationTokenSource();
        var refresher = Task.Run(() =>
        {
            var r = new Random(3);
            while (!stop.IsCancellationRequested)
            {
                digests.Refresh(settledOnly: r.Next(2) == 0, parallel: false);
            }
        });

        // Pages land as content or as zero pages (cleared), write-then-mark, as the receive loops do; segment 2 only
        // ever gets zero pages.
        var random = new Random(8);
        var pagesPerSegment = SegmentDigests.SegmentBytes / RamBlock.PageSize;
        for (var i = 0; i < 20_000; i++)
        {
            var page = random.NextInt64(block.PageCount);
            if (page / pagesPerSegment == 2 || random.Next(3) == 0)
            {
                block.Page(page).Clear();
                digests.MarkZeroWritten(page, 1);
            }
            else
            {
                block.Page(page)[random.Next(RamBlock.PageSize)] = (byte)random.Next(1, 256);
                digests.MarkWritten(page, 1);
            }
        }

        stop.Cancel();
        await refresher;
        Assert.Equal(block.ComputeDigest(), digests.Compute());
        Assert.True(digests.ZeroSegments > 0, "segment 2 received only zero pages and is known zero");
    }

    [Fact]
    public void MarkWritten_rejects_pages_beyond_the_block()
    {
        using var block = RamBlock.Create("seg", 16 * RamBlock.PageSize);
        var digests = new SegmentDigests(block);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => digests.MarkWritten(15, 2));
        Assert.Contains("15..16", e.Message);
    }
}
