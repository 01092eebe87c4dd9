using Migration.Devices.Util;

namespace Migration.Devices.Ram;

/// <summary>
/// Populates fresh guest RAM just ahead of writers that fill it in ascending order: the receive loops of an incoming
/// migration (the source sends each block's pages in ascending order, block after block). Fresh anonymous memory costs
/// a kernel page clear on first touch (on a VM whose free memory the host reclaimed, a host fault per page too);
/// without this, the receive loops pay it inside recv, one 2 MiB fault at a time, while their sockets wait. The
/// populator keeps up to <c>aheadBytes</c> beyond the highest page written so far faulted in, from
/// <see cref="Threads"/> dedicated threads, in <see cref="SliceBytes"/> calls to <see cref="RamBlock.Populate"/>.
/// <para>
/// Slices are claimed atomically (a compare-and-swap on one claim cursor that only grows), so no page is populated
/// twice and, while the writers stay behind the window, none in it is left out; several threads populate
/// neighbouring slices at once (first touch of unbacked memory is latency-bound per thread, see docs/benchmarks.md).
/// A claim starts at the frontier or beyond, never behind the writers (the writers fault those pages themselves),
/// and ends at most <c>aheadBytes</c> beyond the frontier it saw (the frontier only grows, so that is the bound).
/// </para>
/// <para>
/// It starts only once a page with content was written, so a guest whose pages all arrive as zero pages is never
/// populated, and at most <c>aheadBytes</c> beyond the last page with content are populated for nothing. Blocks whose
/// memory is already touched (pooled) are skipped. Populating never changes content, so it runs concurrently with
/// the writers and exposes nothing of anyone.
/// </para>
/// Threading: <see cref="OnWritten"/> from any thread (lock-free: a max, and a wake-up at most once per round of a
/// populating thread); the threads share only the claim cursor (CAS) and the populated count (atomic add); a thread
/// that claims a slice while more work is due wakes one sleeping peer. A thread ends once every page is claimed.
/// <see cref="Dispose"/> stops every thread after its current slice (it does not wait: a slice that races a released
/// block populates a retired, throw-away range or is refused).
/// </summary>
public sealed class RamPopulator : IDisposable
{
    /// <summary>
    /// Bytes per populate call (4 huge pages): madvise holds the mmap lock for reading while it clears, and a writer
    /// waiting for it (the GC's mmap/munmap, a new thread's stack) stalls every thread behind it; fresh pages cost up
    /// to 1.2 ms per MiB here, so a call stays around 10 ms even then (AnonymousMapping.PopulateWrite uses 64 MiB
    /// calls for a node that populates while idle).
    /// </summary>
    public const long SliceBytes = 8L << 20;

    /// <summary>The most populating threads one migration may use.</summary>
    public const int MaxThreads = 16;

    private const long SlicePages = SliceBytes >> RamBlock.PageShift;

    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly bool[] _populate;
    private readonly long[] _firstPage; // global index of each block's first page (blocks in order)
    private readonly long _totalPages;
    private readonly long _aheadPages;
    private readonly SemaphoreSlim _wake = new(0); // not disposed: threads may still be waking on it after Dispose
    private readonly Thread[] _threads;
    private long _frontier = -1; // highest global page written with content (any thread; only grows)
    private long _claimed; // global pages below it were claimed by a thread or passed (only grows, by CAS)
    private long _populatedPages;
    private int _wakePending; // 1 while OnWritten's wake-up has not been taken by a thread
    private int _sleepers; // threads waiting on _wake
    private volatile bool _stopped;

    /// <param name="populate">Per block: true if its memory is fresh (untouched), false if already touched (pooled).</param>
    /// <param name="aheadBytes">How far beyond the highest written page to keep populated (&gt; 0).</param>
    /// <param name="threads">Populating threads (1..<see cref="MaxThreads"/>).</param>
    public RamPopulator(IReadOnlyList<RamBlock> blocks, IReadOnlyList<bool> populate, long aheadBytes, int threads = 1)
    {
        if (populate.Count != blocks.Count)
        {
            throw new ArgumentException($"{populate.Count} populate flags for {blocks.Count} blocks", nameof(populate));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(aheadBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, MaxThreads);
        _blocks = blocks;
        _populate = populate.ToArray();
        _firstPage = new long[blocks.Count];
        for (var b = 0; b < blocks.Count; b++)
        {
            _firstPage[b] = _totalPages;
            _totalPages += blocks[b].PageCount;
        }

        _aheadPages = Math.Max(1, aheadBytes >> RamBlock.PageShift);
        _threads = new Thread[threads];
        for (var t = 0; t < threads; t++)
        {
            _threads[t] = new Thread(Run) { IsBackground = true, Name = $"ram-populate-{t}" };
            _threads[t].Start();
        }
    }

    /// <summary>Populating threads.</summary>
    public int Threads => _threads.Length;

    /// <summary>Bytes populated so far.</summary>
    public long PopulatedBytes => Interlocked.Read(ref _populatedPages) << RamBlock.PageShift;

    /// <summary>Test hook: called with each claimed global page range [from, end) before it is populated (any populating thread).</summary>
    internal Action<long, long>? OnClaimed { get; init; }

    /// <summary>Pages up to <paramref name="lastPage"/> of block <paramref name="blockIndex"/> were written with content. Any thread.</summary>
    public void OnWritten(int blockIndex, long lastPage)
    {
        var page = _firstPage[blockIndex] + lastPage;
        AtomicMax.Raise(ref _frontier, page);

        // Wake a thread only when a slice of work is due (or the rest of the RAM, if shorter) and no wake-up is
        // pending: not once per packet. A woken thread wakes its peers as long as there is more (Run).
        if (WorkDue(page) && Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            _wake.Release();
        }
    }

    /// <summary>True when at least a slice (or the rest of the RAM) lies unclaimed inside the window of this frontier.</summary>
    private bool WorkDue(long frontier)
    {
        var claimed = Math.Max(Volatile.Read(ref _claimed), frontier + 1);
        var target = Math.Min(_totalPages, frontier + 1 + _aheadPages);
        return claimed < _totalPages && target - claimed >= Math.Min(SlicePages, _totalPages - claimed);
    }

    private void Run()
    {
        try
        {
            while (!_stopped && Volatile.Read(ref _claimed) < _totalPages)
            {
                Interlocked.Increment(ref _sleepers);
                _wake.Wait();
                Interlocked.Decrement(ref _sleepers);
                Volatile.Write(ref _wakePending, 0); // cleared before looking: a later advance wakes a thread again
                while (!_stopped && TryClaim(out var from, out var end))
                {
                    if (Volatile.Read(ref _sleepers) > 0 && _wake.CurrentCount == 0 && WorkDue(Volatile.Read(ref _frontier)))
                    {
                        _wake.Release(); // more is due than this slice: a peer takes the next one meanwhile
                    }

                    OnClaimed?.Invoke(from, end);
                    PopulateRange(from, end);
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // A block was released under us (the migration ended): nothing left to populate.
        }
    }

    /// <summary>
    /// Claims the next slice [from, end): from the claim cursor or the frontier + 1, whichever is further (never behind
    /// the writers), to at most one slice and at most the window's end. False when nothing in the window is unclaimed.
    /// </summary>
    private bool TryClaim(out long from, out long end)
    {
        while (true)
        {
            var frontier = Volatile.Read(ref _frontier);
            var claimed = Volatile.Read(ref _claimed);
            var target = Math.Min(_totalPages, frontier + 1 + _aheadPages);
            from = Math.Max(claimed, frontier + 1);
            end = Math.Min(target, from + SlicePages);
            if (frontier < 0 || from >= target)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _claimed, end, claimed) == claimed)
            {
                return true;
            }
        }
    }

    /// <summary>Populates global pages [from, end), block by block, skipping blocks already touched.</summary>
    private void PopulateRange(long from, long end)
    {
        for (var b = 0; b < _blocks.Count && from < end; b++)
        {
            var blockEnd = _firstPage[b] + _blocks[b].PageCount;
            if (from >= blockEnd)
            {
                continue;
            }

            var stop = Math.Min(end, blockEnd);
            if (_populate[b])
            {
                _blocks[b].Populate(from - _firstPage[b], (int)(stop - from));
                Interlocked.Add(ref _populatedPages, stop - from);
            }

            from = stop;
        }
    }

    /// <summary>Threads still running (test hook).</summary>
    internal int RunningThreads => _threads.Count(t => t.IsAlive);

    /// <summary>Tells every thread to stop after its current slice; does not wait (for the downtime's path). Idempotent.</summary>
    public void Stop()
    {
        _stopped = true;
        _wake.Release(_threads.Length);
    }

    /// <summary>
    /// Stops every thread after its current slice (a few huge pages) and waits for them, at most 5 s each, so that the
    /// owner may unmap the blocks right after (RamBlock.Populate's contract). Idempotent.
    /// </summary>
    public void Dispose()
    {
        Stop();
        foreach (var t in _threads)
        {
            if (t != Thread.CurrentThread && t.IsAlive)
            {
                t.Join(TimeSpan.FromSeconds(5));
            }
        }
    }
}
