namespace Migration.Devices.Ram;

/// <summary>
/// Per-segment digests of one RAM block, kept current while the block is being written, so that the digest at the end
/// of a migration hashes only the segments written since their last hash instead of the whole block (issue 9 point 4).
/// The block digest (<see cref="Compute"/>) is by construction the value of <see cref="RamBlock.ComputeDigest"/>: the
/// same segment hashes (<see cref="SegmentHashes.HashSegment"/>) combined the same way (<see cref="SegmentHashes.Combine"/>).
///
/// Contract (why it is exact): a writer calls <see cref="MarkWritten"/> AFTER its bytes are in memory (write-then-mark,
/// as with the dirty bitmap). A refresh clears a segment's mark BEFORE it hashes it. So a write that lands during or
/// after a hash leaves its segment marked, and is hashed again by the next refresh; a segment that is not marked has
/// not changed since its stored digest was computed. <see cref="Compute"/> is exact once every writer has stopped
/// (paused guest, receive loops ended) and has marked what it wrote.
///
/// Marks carry the refresh round they were made in, so a refresh may skip segments still being written
/// (<c>settledOnly</c>: marked since the previous refresh) and hash them once they went quiet: a destination
/// then hashes each segment shortly after its pages arrived, not once per packet.
/// Known-zero segments (destination): after <see cref="AssumeZero"/>, a segment written only through
/// <see cref="MarkZeroWritten"/> (zero pages, scrubbed pages) is all zeros at the end, so a refresh takes the digest of
/// zeros without reading it; the first <see cref="MarkWritten"/> (content) makes it a segment that is hashed from then on.
/// A writer sets the content flag before its mark, and a refresh reads the flag after clearing the mark, so a segment
/// that gets content during a refresh is marked again and hashed by the next one.
/// Threading: marks from any number of threads; refreshes are serialized by a lock; <see cref="HashIfDue"/> from any
/// thread, without the lock. Whoever hashes a segment holds its per-segment flag meanwhile, so no two threads hash one
/// segment at once and an older hash never overwrites a newer one; <see cref="Compute"/> waits for every flag.
/// </summary>
public sealed class SegmentDigests
{
    /// <summary>
    /// Segment size of the two-level block digest (512 KiB = 128 pages, one full RAM packet of the default packet-pages),
    /// so that a sender thread that just sent a whole segment can hash it from cache (<see cref="HashIfDue"/>).
    /// </summary>
    public const long SegmentBytes = 512L << 10;

    /// <summary>Pages per segment.</summary>
    public const int PagesPerSegment = 1 << PagesPerSegmentShift;

    internal const int PagesPerSegmentShift = 7; // 512 KiB / 4 KiB = 2^7 pages (also SegmentMarks)

    private readonly RamBlock _block;
    private readonly UInt128[] _digests;
    /// <summary>Which segments are stale (round-stamped marks) and which may hold non-zero bytes.</summary>
    private readonly SegmentMarks _marks;
    /// <summary>Per segment: 1 while one thread hashes it (a refresh, the final digest or a sender), so no two hash it at once.</summary>
    private readonly int[] _hashing;
    private readonly object _refresh = new();

    // The segments due in the current refresh; written and read only under _refresh, reused by every refresh so a
    // background refresh every few milliseconds allocates nothing.
    private readonly int[] _due;
    private long _hashedSegments;
    private long _zeroSegments;

    /// <summary>Starts with every segment marked: nothing has been hashed yet.</summary>
    public SegmentDigests(RamBlock block)
    {
        _block = block;
        var count = SegmentCount(block.SizeBytes);
        _digests = new UInt128[count];
        _marks = new SegmentMarks(block, count);
        _hashing = new int[count];
        _due = new int[count];
        _marks.MarkAll();
    }

    public int Count => _digests.Length;

    /// <summary>Segments hashed so far by refreshes (for tests and reports).</summary>
    public long HashedSegments => Interlocked.Read(ref _hashedSegments);

    /// <summary>Segments refreshed to the digest of zeros without reading them (known zero, see <see cref="MarkZeroWritten"/>).</summary>
    public long ZeroSegments => Interlocked.Read(ref _zeroSegments);

    /// <summary>Segments whose digest is stale now (racy snapshot).</summary>
    public int StaleSegments => _marks.MarkedCount();

    /// <summary>
    /// Bytes a <see cref="Compute"/> would hash if the writers stopped after dirtying what <paramref name="live"/> holds
    /// now: every stale segment plus every segment with a dirty page in <paramref name="live"/> (the block's live dirty
    /// bitmap, not yet fetched). For the downtime estimate; a racy snapshot.
    /// </summary>
    public long BytesToHash(DirtyBitmap live)
    {
        ArgumentNullException.ThrowIfNull(live);
        long bytes = 0;
        for (var s = 0; s < _marks.Count; s++)
        {
            if (_marks.MarkedOrDirty(s, live))
            {
                bytes += SegmentLength(s);
            }
        }

        return bytes;
    }

    /// <summary>Bytes of segment <paramref name="s"/> of this block (the last one may be short).</summary>
    private long SegmentLength(int s) => Math.Min(SegmentBytes, _block.SizeBytes - (s * SegmentBytes));

    public static int SegmentCount(long sizeBytes) => (int)((sizeBytes + SegmentBytes - 1) / SegmentBytes);

    /// <summary>Pages [first, first+count) were written, with any content (call after the write). Any thread.</summary>
    public void MarkWritten(long firstPage, long count) => _marks.Mark(firstPage, count, content: true);

    /// <summary>
    /// Pages [first, first+count) were written with zeros or zeroed (call after the write): their segments are marked,
    /// but a segment that never got content since <see cref="AssumeZero"/> stays known zero and is not read. Any thread.
    /// </summary>
    public void MarkZeroWritten(long firstPage, long count) => _marks.Mark(firstPage, count, content: false);

    /// <summary>Marks every segment with a set bit in a fetched dirty-bitmap snapshot (64 pages per word).</summary>
    public void MarkFetched(ReadOnlySpan<ulong> snapshot) => _marks.MarkFetched(snapshot);

    /// <summary>
    /// Takes every segment's digest as the digest of zeros, without reading memory, and clears every mark. For a
    /// destination block, whose every page is either written (and marked) before <see cref="Compute"/> or zero:
    /// fresh anonymous memory, or pooled memory whose unwritten pages are zeroed (and marked) before the end
    /// (IncomingRamTracker). Without it the first refresh would hash the whole block before its pages arrive, and
    /// every byte would be hashed twice. Every segment is known zero until a <see cref="MarkWritten"/> gives it content.
    /// Call before any writer marks (a mark made before it is discarded).
    /// </summary>
    public void AssumeZero()
    {
        lock (_refresh)
        {
            for (var s = 0; s < _marks.Count; s++)
            {
                _digests[s] = SegmentHashes.ZeroDigest(SegmentLength(s));
                _marks.ClearAsZero(s);
            }
        }
    }

    /// <summary>Marks every segment, with content: the next refresh hashes the whole block.</summary>
    public void MarkAll() => _marks.MarkAll();

    /// <summary>
    /// Hashes the marked segments (all of them, or with <paramref name="settledOnly"/> only those not marked since the
    /// previous refresh) and starts a new round. Returns the number of segments hashed.
    /// </summary>
    /// <param name="stop">
    /// Checked between segments of a sequential refresh: when set, the refresh returns early and the segments it did
    /// not hash stay marked (a background refresh yields to the final, parallel <see cref="Compute"/>).
    /// </param>
    public int Refresh(bool settledOnly, bool parallel, CancellationToken stop = default)
    {
        lock (_refresh)
        {
            var round = _marks.EndRound(); // marks from now on carry round + 1
            var dueCount = 0;
            for (var s = 0; s < _marks.Count; s++)
            {
                var mark = _marks.MarkOf(s);
                if (mark != 0 && !(settledOnly && mark >= round))
                {
                    _due[dueCount++] = s;
                }
            }

            var due = new ArraySegment<int>(_due, 0, dueCount);

            // Each segment's mark is cleared just before that segment is hashed, not all of them up front: the ones
            // still waiting in this refresh stay marked, so StaleSegments (and an estimate of what a digest taken
            // now would hash) counts them; a stopped refresh leaves them marked for the next one.
            if (parallel && dueCount > 1)
            {
                var hashed = 0;
                Parallel.ForEach(due, s =>
                {
                    if (TryHash(s, round, settledOnly))
                    {
                        Interlocked.Increment(ref hashed);
                    }
                });
                return hashed;
            }

            var count = 0;
            foreach (var s in due)
            {
                if (stop.IsCancellationRequested)
                {
                    break;
                }

                if (TryHash(s, round, settledOnly))
                {
                    count++;
                }
            }

            return count;
        }
    }

    /// <summary>
    /// Hashes segment <paramref name="segment"/> now if it is marked and no other thread is hashing it; for a thread that
    /// has just read the segment's bytes (a source sender after sending all its pages), so the hash reads them from
    /// cache instead of a refresh reading them again from memory. Hashes the bytes in memory, not what was sent: a
    /// send or zero-detection bug still shows in the digests. Thread-safe; false if there was nothing to do.
    /// </summary>
    public bool HashIfDue(int segment)
    {
        if ((uint)segment >= (uint)_marks.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(segment), segment, $"block '{_block.Name}' has {_marks.Count} segments");
        }

        return TryHash(segment, round: 0, settledOnly: false);
    }

    /// <summary>
    /// Takes segment <paramref name="s"/> for hashing (<see cref="SegmentMarks.TryTake"/>) and stores its digest, unless another
    /// thread is hashing it right now (then false; its mark, if a writer set it again, stays for a later hash). The
    /// digest is stored before the segment is released, so the final <see cref="Compute"/>, which waits for every
    /// segment to be released, combines it.
    /// </summary>
    private bool TryHash(int s, long round, bool settledOnly)
    {
        if (Interlocked.CompareExchange(ref _hashing[s], 1, 0) != 0)
        {
            return false;
        }

        try
        {
            if (!_marks.TryTake(s, round, settledOnly))
            {
                return false;
            }

            _digests[s] = DigestOf(s);
            return true;
        }
        finally
        {
            Volatile.Write(ref _hashing[s], 0);
        }
    }

    /// <summary>
    /// The current digest of segment <paramref name="s"/>, whose mark was just cleared: the digest of zeros if it is known
    /// zero (the flag is read after the mark was cleared, see the class contract), else a hash of its bytes.
    /// </summary>
    private UInt128 DigestOf(int s)
    {
        if (!_marks.HasContent(s))
        {
            Interlocked.Increment(ref _zeroSegments);
            return SegmentHashes.ZeroDigest(SegmentLength(s));
        }

        Interlocked.Increment(ref _hashedSegments);
        return SegmentHashes.HashSegment(_block, s);
    }

    /// <summary>The block digest: refreshes every marked segment (in parallel), then combines. Exact once writers stopped.</summary>
    public UInt128 Compute()
    {
        lock (_refresh)
        {
            Refresh(settledOnly: false, parallel: true);
            // A sender may still be hashing a segment it took (HashIfDue): wait for it, and hash whatever is marked
            // still (one the refresh found busy). Writers have stopped, so this ends.
            for (var s = 0; s < _marks.Count; s++)
            {
                var spin = new SpinWait();
                while (_marks.IsMarked(s) || Volatile.Read(ref _hashing[s]) != 0)
                {
                    if (!TryHash(s, round: 0, settledOnly: false))
                    {
                        spin.SpinOnce();
                    }
                }
            }

            return SegmentHashes.Combine(_digests);
        }
    }
}
