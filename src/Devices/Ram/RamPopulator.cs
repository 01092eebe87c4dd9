using Migration.Devices.Util;

namespace Migration.Devices.Ram;

/// <summary>
/// Populates fresh guest RAM just ahead of writers that fill it in ascending order: the receive loops of an incoming
/// migration (the source sends each block's pages in ascending order, block after block). Fresh anonymous memory costs
/// a kernel page clear on first touch; without this, the receive loops pay it inside recv, one 2 MiB fault at a time,
/// while their sockets wait. The populator keeps up to <c>aheadBytes</c> beyond the highest page written so far faulted
/// in, from one dedicated thread, in <see cref="SliceBytes"/> calls to <see cref="RamBlock.Populate"/>.
/// <para>
/// It starts only once a page with content was written and never goes behind the frontier (the writers fault those
/// pages themselves), so a guest whose pages all arrive as zero pages is never populated, and at most
/// <c>aheadBytes</c> beyond the last page with content are populated for nothing. Blocks whose memory is already
/// touched (pooled) are skipped. Populating never changes content, so it runs concurrently with the writers and
/// exposes nothing of anyone.
/// </para>
/// Threading: <see cref="OnWritten"/> from any thread (lock-free: a max, and a wake-up at most once per round of the
/// populating thread); the thread owns the cursor; <see cref="Dispose"/> stops the thread after its current slice
/// (it does not wait: a slice that races a released block populates a retired, throw-away range or is refused).
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

    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly bool[] _populate;
    private readonly long[] _firstPage; // global index of each block's first page (blocks in order)
    private readonly long _totalPages;
    private readonly long _aheadPages;
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _thread;
    private long _frontier = -1; // highest global page written with content (any thread; only grows)
    private long _cursor; // global pages below it were populated or passed (written by the thread only)
    private long _populatedPages;
    private int _wakePending;
    private volatile bool _stopped;

    /// <param name="populate">Per block: true if its memory is fresh (untouched), false if already touched (pooled).</param>
    /// <param name="aheadBytes">How far beyond the highest written page to keep populated (&gt; 0).</param>
    public RamPopulator(IReadOnlyList<RamBlock> blocks, IReadOnlyList<bool> populate, long aheadBytes)
    {
        if (populate.Count != blocks.Count)
        {
            throw new ArgumentException($"{populate.Count} populate flags for {blocks.Count} blocks", nameof(populate));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(aheadBytes);
        _blocks = blocks;
        _populate = populate.ToArray();
        _firstPage = new long[blocks.Count];
        for (var b = 0; b < blocks.Count; b++)
        {
            _firstPage[b] = _totalPages;
            _totalPages += blocks[b].PageCount;
        }

        _aheadPages = Math.Max(1, aheadBytes >> RamBlock.PageShift);
        _thread = new Thread(Run) { IsBackground = true, Name = "ram-populate" };
        _thread.Start();
    }

    /// <summary>Bytes populated so far.</summary>
    public long PopulatedBytes => Interlocked.Read(ref _populatedPages) << RamBlock.PageShift;

    /// <summary>Pages up to <paramref name="lastPage"/> of block <paramref name="blockIndex"/> were written with content. Any thread.</summary>
    public void OnWritten(int blockIndex, long lastPage)
    {
        var page = _firstPage[blockIndex] + lastPage;
        AtomicMax.Raise(ref _frontier, page);

        // Wake the thread only when a slice of work is due (or the rest of the RAM, if shorter) and no wake-up is
        // pending: not once per packet.
        var cursor = Volatile.Read(ref _cursor);
        var target = Math.Min(_totalPages, page + 1 + _aheadPages);
        if (cursor < _totalPages && target - cursor >= Math.Min(SliceBytes >> RamBlock.PageShift, _totalPages - cursor))
        {
            if (Interlocked.Exchange(ref _wakePending, 1) == 0)
            {
                _wake.Set();
            }
        }
    }

    private void Run()
    {
        var slicePages = SliceBytes >> RamBlock.PageShift;
        try
        {
            while (!_stopped)
            {
                _wake.WaitOne();
                Volatile.Write(ref _wakePending, 0); // cleared before looking: a later advance wakes us again
                while (!_stopped)
                {
                    var frontier = Volatile.Read(ref _frontier);
                    var target = Math.Min(_totalPages, frontier + 1 + _aheadPages);
                    var from = Math.Max(_cursor, frontier + 1); // never behind the writers
                    if (frontier < 0 || from >= target)
                    {
                        break;
                    }

                    var end = Math.Min(target, from + slicePages);
                    PopulateRange(from, end);
                    Volatile.Write(ref _cursor, end);
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // A block was released under us (the migration ended): nothing left to populate.
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

    /// <summary>Stops the thread after its current slice. Idempotent; does not wait.</summary>
    public void Dispose()
    {
        _stopped = true;
        _wake.Set(); // the event is not disposed: the thread may still be waking on it
    }
}
