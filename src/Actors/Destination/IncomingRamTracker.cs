using Migration.Devices.Ram;
using Migration.Transport.Channels;
using Migration.Transport.ZeroPages;

namespace Migration.Actors.Destination;

/// <summary>
/// What the receive loops of one incoming migration wrote into guest RAM, for three purposes:
/// <list type="bullet">
/// <item>Digests out of the downtime (issue 9 point 4): each written segment is marked (<see cref="SegmentDigests"/>),
/// and a background loop hashes the segments that went quiet every <c>interval</c>, so a segment is hashed shortly
/// after its pages arrived; once every channel ended, <see cref="FinishAsync"/> hashes only what is still marked
/// (the last iteration's segments). Segments never written are not hashed at all: they start with the digest of zeros
/// (<see cref="SegmentDigests.AssumeZero"/>), which the scrub below makes true; a segment that only received zero pages
/// stays known zero and is not read either. The values equal a full recomputation.</item>
/// <item>No guest sees another's bytes: a block whose memory was reused (it may hold a former guest's bytes, see
/// GuestMemoryPool) records every page a packet delivered; <see cref="FinishAsync"/> zeroes every page that never
/// arrived before the digests are taken, so each page of the guest is either received or zero when it resumes.</item>
/// <item>Zero pages on fresh memory are not read: a fresh block records the pages content was announced for
/// (<see cref="OnPagesArriving"/>, before the bytes land), and <see cref="MayHoldData"/> tells a receive loop that any
/// other page is still zero, so a zero page for it needs neither a read nor a write.</item>
/// </list>
/// Threading: <see cref="OnPagesArriving"/>, <see cref="OnPagesWritten"/> and <see cref="MayHoldData"/> run on the
/// receive loops (thread-safe: atomic marks and reads); the background loop
/// on the thread pool; <see cref="FinishAsync"/> and <see cref="Dispose"/> are called by IncomingMigration on its
/// thread, FinishAsync only after every receive loop ended. Nothing here touches actor state.
/// </summary>
public sealed class IncomingRamTracker : IRamWriteObserver, IDisposable
{
    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly SegmentDigests[] _digests;
    /// <summary>Per block: pages delivered by the stream, or null for fresh (known-zero) memory that needs no scrub.</summary>
    private readonly DirtyBitmap?[] _received;
    /// <summary>Per block: fresh blocks only, the pages a packet wrote content into (all others are still zero); null for reused blocks.</summary>
    private readonly DirtyBitmap?[] _holdsData;
    private readonly CancellationTokenSource _stop = new();
    private readonly RamPopulator? _populator;
    private readonly Task _background;
    private long _scrubbedPages;
    private long _bytesWritten;

    /// <summary>Background hashing period: long enough that a segment still receiving is skipped (marked again since).</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(50);

    /// <param name="reused">Per block: true if its memory may hold bytes of a former guest.</param>
    /// <param name="interval">How often the background loop hashes the segments that went quiet.</param>
    /// <param name="populateAheadBytes">
    /// How far ahead of the highest page received with content to keep fresh blocks populated (<see cref="RamPopulator"/>);
    /// 0 = off (the receive loops fault fresh pages in themselves).
    /// </param>
    /// <param name="populateThreads">Threads that populate ahead (1..RamPopulator.MaxThreads).</param>
    public IncomingRamTracker(IReadOnlyList<RamBlock> blocks, IReadOnlyList<bool> reused, TimeSpan interval, long populateAheadBytes = 0,
        int populateThreads = 1)
    {
        if (reused.Count != blocks.Count)
        {
            throw new ArgumentException($"{reused.Count} reuse flags for {blocks.Count} blocks", nameof(reused));
        }

        _blocks = blocks;
        _digests = blocks.Select(b => new SegmentDigests(b)).ToArray();
        foreach (var d in _digests)
        {
            // Every page is received (marked) or zero at the end (fresh memory, or scrubbed below): no need to hash
            // the block before its pages arrive, so each received byte is hashed once.
            d.AssumeZero();
        }

        _received = blocks.Select((b, i) => reused[i] ? new DirtyBitmap(b.PageCount) : null).ToArray();
        _holdsData = blocks.Select((b, i) => reused[i] ? null : new DirtyBitmap(b.PageCount)).ToArray();
        if (populateAheadBytes > 0 && reused.Contains(false))
        {
            _populator = new RamPopulator(blocks, reused.Select(r => !r).ToArray(), populateAheadBytes, populateThreads);
        }

        var digests = _digests;
        var ct = _stop.Token;
        _background = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                foreach (var d in digests)
                {
                    d.Refresh(settledOnly: true, parallel: false, ct); // stops after the current segment when finishing
                }
            }
        }, ct);
    }

    /// <summary>Pages zeroed by <see cref="FinishAsync"/> because the stream never delivered them (reused blocks only).</summary>
    public long ScrubbedPages => Interlocked.Read(ref _scrubbedPages);

    /// <summary>Guest bytes delivered so far (pages of every RAM packet, zero pages included).</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>Segments hashed so far, all blocks.</summary>
    public long HashedSegments => _digests.Sum(d => d.HashedSegments);

    /// <summary>Segments given the digest of zeros without reading them (only zero pages or scrubbed pages written), all blocks.</summary>
    public long ZeroSegments => _digests.Sum(d => d.ZeroSegments);

    /// <summary>Fresh bytes populated ahead of the receive loops so far (0 when populating ahead is off).</summary>
    public long PopulatedBytes => _populator?.PopulatedBytes ?? 0;

    /// <param name="normalPages">How many of the offsets (the first ones, ascending) carried content; the rest were zero pages.</param>
    public void OnPagesWritten(int blockIndex, ReadOnlySpan<ulong> pageOffsets, int normalPages)
    {
        if (pageOffsets.IsEmpty)
        {
            return;
        }

        if (normalPages > 0)
        {
            _populator?.OnWritten(blockIndex, (long)(pageOffsets[normalPages - 1] >> RamBlock.PageShift));
        }

        var received = _received[blockIndex];
        var digests = _digests[blockIndex];
        // Pages with content (listed first) and zero pages are marked apart: a segment that only ever got zero pages
        // stays known zero (SegmentDigests.MarkZeroWritten), so its digest is that of zeros without reading it.
        if (MarkReceived(pageOffsets[..normalPages], received, out var first, out var count))
        {
            digests.MarkWritten(first, count);
        }

        if (MarkReceived(pageOffsets[normalPages..], received, out var firstZero, out var zeroCount))
        {
            digests.MarkZeroWritten(firstZero, zeroCount);
        }

        Interlocked.Add(ref _bytesWritten, (long)pageOffsets.Length << RamBlock.PageShift);
    }

    /// <summary>Fresh blocks: records the pages about to receive content, before their bytes land (atomic marks).</summary>
    public void OnPagesArriving(int blockIndex, ReadOnlySpan<ulong> normalPageOffsets)
    {
        if (_holdsData[blockIndex] is { } holdsData)
        {
            MarkReceived(normalPageOffsets, holdsData, out _, out _);
        }
    }

    /// <summary>
    /// False only for a page of a fresh block that no packet announced content for (still zero); reused memory may
    /// hold a former guest's bytes anywhere. Thread-safe: an atomic read of the bit OnPagesArriving set.
    /// </summary>
    public bool MayHoldData(int blockIndex, long page) => _holdsData[blockIndex] is not { } holdsData || holdsData.IsDirty(page);

    /// <summary>
    /// Marks each of these pages received (reused memory only) and gives the page range [first, first + count) that
    /// covers them; false when there are none.
    /// </summary>
    private static bool MarkReceived(ReadOnlySpan<ulong> pageOffsets, DirtyBitmap? received, out long first, out long count)
    {
        first = long.MaxValue;
        var last = -1L;
        foreach (var offset in pageOffsets)
        {
            var page = (long)(offset >> RamBlock.PageShift);
            first = Math.Min(first, page);
            last = Math.Max(last, page);
            received?.Mark(page);
        }

        count = last - first + 1;
        return last >= 0;
    }

    /// <summary>
    /// Every receive loop has ended: stops the background hashing, zeroes the never-received pages of reused blocks,
    /// and returns every block's digest (32 hex digits), in block order.
    /// </summary>
    public Task<string[]> FinishAsync()
    {
        _populator?.Stop(); // every page has arrived: nothing left to populate (Dispose waits for its threads)
        _stop.Cancel();
        return _background.ContinueWith(_ =>
        {
            Parallel.For(0, _blocks.Count, Scrub);
            return _digests.Select(d => d.Compute().ToString("x32")).ToArray();
        }, TaskScheduler.Default);
    }

    /// <summary>Zeroes every page of a reused block that no packet delivered (the received bitmap is consumed).</summary>
    private void Scrub(int blockIndex)
    {
        var received = _received[blockIndex];
        if (received is null)
        {
            return;
        }

        var block = _blocks[blockIndex];
        var words = received.CreateSnapshotBuffer();
        received.FetchAndClear(words);
        long scrubbed = 0;
        for (var w = 0; w < words.Length; w++)
        {
            var missing = ~words[w];
            while (missing != 0)
            {
                var page = ((long)w << 6) + System.Numerics.BitOperations.TrailingZeroCount(missing);
                missing &= missing - 1;
                if (page >= block.PageCount)
                {
                    break;
                }

                var bytes = block.Page(page);
                if (!ZeroPageDetector.IsAllZero(bytes))
                {
                    bytes.Clear();
                    _digests[blockIndex].MarkZeroWritten(page, 1);
                    scrubbed++;
                }
            }
        }

        Interlocked.Add(ref _scrubbedPages, scrubbed);
    }

    public void Dispose()
    {
        _populator?.Dispose();
        _stop.Cancel(); // not disposed: the background loop may still be reading its token as it winds down
    }
}
