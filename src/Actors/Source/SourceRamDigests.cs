using Migration.Devices.Ram;

namespace Migration.Actors.Source;

/// <summary>
/// The source's RAM digests kept current during precopy (issue 9 point 4), so that the digest taken after the guest
/// stopped hashes only the segments dirtied in the last iteration instead of all RAM inside the downtime.
/// At every dirty-bitmap sync (<see cref="OnIterationFetched"/>) the segments with a dirty page are marked. The sender
/// threads hash each whole segment they send right after sending it, from cache (<see cref="OnSent"/>); one background
/// refresh (one thread: the other core keeps sending) rehashes the marked segments that an earlier sync marked and no
/// sender took. A guest write after a sync goes to the live bitmap and marks its segment at the next sync, so the
/// final digest (<see cref="ComputeFinalAsync"/>, after the stop-copy sync of the paused guest) equals a full
/// recomputation.
/// Owned by the MigrationCoordinator: OnIterationFetched and ComputeFinalAsync are called on its thread, OnSent on the
/// sender threads; the refresh task runs on the pool; all of them touch only the thread-safe <see cref="SegmentDigests"/>.
/// </summary>
public sealed class SourceRamDigests
{
    private readonly SegmentDigests[] _blocks;
    private Task _refresh = Task.CompletedTask;
    private readonly CancellationTokenSource _final = new();

    public SourceRamDigests(IReadOnlyList<RamBlock> blocks)
    {
        _blocks = blocks.Select(b => new SegmentDigests(b)).ToArray();
    }

    /// <summary>Segments hashed so far, all blocks (for tests and reports).</summary>
    public long HashedSegments => _blocks.Sum(b => b.HashedSegments);

    /// <summary>
    /// RAM bytes the stop-time digest would hash if the guest stopped now (stale segments and segments with a page in
    /// the live dirty bitmaps); for the downtime estimate. Coordinator thread.
    /// </summary>
    public long BytesToHashAtStop(IReadOnlyList<RamBlock> blocks)
    {
        long bytes = 0;
        for (var i = 0; i < _blocks.Length; i++)
        {
            bytes += _blocks[i].BytesToHash(blocks[i].Dirty);
        }

        return bytes;
    }

    /// <summary>
    /// A sender thread has just sent pages <paramref name="pages"/>[0..count) of block <paramref name="blockIndex"/>
    /// (ascending): it hashes now every whole segment those pages cover (one per 128 contiguous, aligned pages: one per
    /// job of the default packet-pages in a first iteration, several with larger packets), while the bytes are in its
    /// cache (the zero check read every zero page, the kernel's copy every other one), instead of a refresh reading them
    /// again. The hash is of guest memory, as any refresh's. Thread-safe (sender threads).
    /// </summary>
    public void OnSent(int blockIndex, long[] pages, int count)
    {
        const int perSegment = SegmentDigests.PagesPerSegment;
        if (count < perSegment)
        {
            return;
        }

        var digests = _blocks[blockIndex];
        for (var i = 0; i < count;)
        {
            var first = pages[i];
            while (i + 1 < count && pages[i + 1] == pages[i] + 1)
            {
                i++;
            }

            // The run first..pages[i] covers the segments from the first that starts in it to the last that ends in it.
            for (var s = (first + perSegment - 1) / perSegment; s < (pages[i] + 1) / perSegment; s++)
            {
                digests.HashIfDue((int)s);
            }

            i++;
        }
    }

    /// <summary>The scanner just synced the dirty bitmaps: marks their segments and starts a refresh unless one runs.</summary>
    public void OnIterationFetched(RamScanner scanner)
    {
        for (var i = 0; i < _blocks.Length; i++)
        {
            _blocks[i].MarkFetched(scanner.Snapshot(i));
        }

        if (_refresh.IsCompleted)
        {
            var blocks = _blocks;
            var final = _final.Token;
            _refresh = Task.Run(() =>
            {
                // Settled only: the segments this sync marked are being sent in this iteration, and a sender hashes
                // each whole one from cache (OnSent); the refresh takes what earlier syncs marked and no sender took.
                foreach (var b in blocks)
                {
                    b.Refresh(settledOnly: true, parallel: false, final);
                }
            });
        }
    }

    /// <summary>
    /// The digests of every block (32 hex digits each), in block order. Call after the guest paused and the scanner
    /// synced its final bitmap (<see cref="OnIterationFetched"/> of the stop-copy iteration).
    /// </summary>
    public Task<string[]> ComputeFinalAsync()
    {
        var blocks = _blocks;
        // The background refresh stops after its current segment (what it did not hash stays marked); whether it
        // ran to the end, stopped or failed, Compute then hashes whatever is still marked, on every core.
        _final.Cancel();
        return _refresh.ContinueWith(_ => blocks.Select(b => b.Compute().ToString("x32")).ToArray(), TaskScheduler.Default);
    }
}
