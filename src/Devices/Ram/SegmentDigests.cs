using System.Buffers.Binary;
using System.IO.Hashing;

namespace Migration.Devices.Ram;

/// <summary>
/// Per-segment digests of one RAM block, kept current while the block is being written, so that the digest at the end
/// of a migration hashes only the segments written since their last hash instead of the whole block (issue 9 point 4).
/// The block digest (<see cref="Compute"/>) is by construction the value of <see cref="RamBlock.ComputeDigest"/>: the
/// same segment hashes (<see cref="HashSegment"/>) combined the same way (<see cref="Combine"/>).
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
/// Threading: marks from any number of threads; refreshes are serialized by a lock.
/// </summary>
public sealed unsafe class SegmentDigests
{
    /// <summary>Segment size of the two-level block digest (64 MiB).</summary>
    public const long SegmentBytes = 64L << 20;

    private const int PagesPerSegmentShift = 14; // 64 MiB / 4 KiB = 2^14 pages

    private readonly RamBlock _block;
    private readonly UInt128[] _digests;
    /// <summary>Per segment: 0 = stored digest is current; otherwise the refresh round (1-based) of the last mark.</summary>
    private readonly long[] _marks;
    private readonly object _refresh = new();
    private long _round = 1;
    private long _hashedSegments;

    /// <summary>Starts with every segment marked: nothing has been hashed yet.</summary>
    public SegmentDigests(RamBlock block)
    {
        _block = block;
        var count = SegmentCount(block.SizeBytes);
        _digests = new UInt128[count];
        _marks = new long[count];
        MarkAll();
    }

    public int Count => _digests.Length;

    /// <summary>Segments hashed so far by refreshes (for tests and reports).</summary>
    public long HashedSegments => Interlocked.Read(ref _hashedSegments);

    /// <summary>Segments whose digest is stale now (racy snapshot).</summary>
    public int StaleSegments
    {
        get
        {
            var stale = 0;
            for (var s = 0; s < _marks.Length; s++)
            {
                stale += Volatile.Read(ref _marks[s]) != 0 ? 1 : 0;
            }

            return stale;
        }
    }

    /// <summary>
    /// Bytes a <see cref="Compute"/> would hash if the writers stopped after dirtying what <paramref name="live"/> holds
    /// now: every stale segment plus every segment with a dirty page in <paramref name="live"/> (the block's live dirty
    /// bitmap, not yet fetched). For the downtime estimate; a racy snapshot.
    /// </summary>
    public long BytesToHash(DirtyBitmap live)
    {
        ArgumentNullException.ThrowIfNull(live);
        const int wordsPerSegment = 1 << (PagesPerSegmentShift - 6);
        long bytes = 0;
        for (var s = 0; s < _marks.Length; s++)
        {
            if (Volatile.Read(ref _marks[s]) != 0 || live.AnyDirtyInWords(s * wordsPerSegment, wordsPerSegment))
            {
                bytes += Math.Min(SegmentBytes, _block.SizeBytes - (s * SegmentBytes));
            }
        }

        return bytes;
    }

    public static int SegmentCount(long sizeBytes) => (int)((sizeBytes + SegmentBytes - 1) / SegmentBytes);

    /// <summary>Pages [first, first+count) were written (call after the write). Any thread.</summary>
    public void MarkWritten(long firstPage, long count)
    {
        if (count <= 0)
        {
            return;
        }

        if (firstPage < 0 || firstPage + count > _block.PageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(firstPage), $"pages {firstPage}..{firstPage + count - 1} beyond block '{_block.Name}' of {_block.PageCount} pages");
        }

        var round = Volatile.Read(ref _round);
        var last = (int)((firstPage + count - 1) >> PagesPerSegmentShift);
        for (var s = (int)(firstPage >> PagesPerSegmentShift); s <= last; s++)
        {
            Volatile.Write(ref _marks[s], round);
        }
    }

    /// <summary>Marks every segment with a set bit in a fetched dirty-bitmap snapshot (64 pages per word).</summary>
    public void MarkFetched(ReadOnlySpan<ulong> snapshot)
    {
        const int wordsPerSegment = 1 << (PagesPerSegmentShift - 6);
        var round = Volatile.Read(ref _round);
        for (var s = 0; s < _marks.Length; s++)
        {
            var start = s * wordsPerSegment;
            if (start >= snapshot.Length)
            {
                break;
            }

            if (snapshot.Slice(start, Math.Min(wordsPerSegment, snapshot.Length - start)).IndexOfAnyExcept(0UL) >= 0)
            {
                Volatile.Write(ref _marks[s], round);
            }
        }
    }

    public void MarkAll()
    {
        var round = Volatile.Read(ref _round);
        for (var s = 0; s < _marks.Length; s++)
        {
            Volatile.Write(ref _marks[s], round);
        }
    }

    /// <summary>
    /// Hashes the marked segments (all of them, or with <paramref name="settledOnly"/> only those not marked since the
    /// previous refresh) and starts a new round. Returns the number of segments hashed.
    /// </summary>
    /// <param name="stop">
    /// Checked between segments of a sequential refresh: when set, the segments not hashed yet are marked again and
    /// the refresh returns early (a background refresh yields to the final, parallel <see cref="Compute"/>).
    /// </param>
    public int Refresh(bool settledOnly, bool parallel, CancellationToken stop = default)
    {
        lock (_refresh)
        {
            var round = Interlocked.Increment(ref _round) - 1; // marks from now on carry round + 1
            var due = new List<int>();
            for (var s = 0; s < _marks.Length; s++)
            {
                var mark = Volatile.Read(ref _marks[s]);
                if (mark == 0 || (settledOnly && mark >= round))
                {
                    continue;
                }

                // Clear before hashing; a writer that marks after this makes the segment due again. If a writer
                // marked between the read and here, the exchange fails and the segment stays due.
                if (Interlocked.CompareExchange(ref _marks[s], 0, mark) == mark)
                {
                    due.Add(s);
                }
            }

            if (parallel && due.Count > 1)
            {
                Parallel.ForEach(due, s => _digests[s] = HashSegment(_block, s));
            }
            else
            {
                for (var i = 0; i < due.Count; i++)
                {
                    if (stop.IsCancellationRequested)
                    {
                        // Not hashed: due again (a writer's newer mark, if any, is as good as this one).
                        for (var k = i; k < due.Count; k++)
                        {
                            Interlocked.CompareExchange(ref _marks[due[k]], round + 1, 0);
                        }

                        Interlocked.Add(ref _hashedSegments, i);
                        return i;
                    }

                    _digests[due[i]] = HashSegment(_block, due[i]);
                }
            }

            Interlocked.Add(ref _hashedSegments, due.Count);
            return due.Count;
        }
    }

    /// <summary>The block digest: refreshes every marked segment (in parallel), then combines. Exact once writers stopped.</summary>
    public UInt128 Compute()
    {
        lock (_refresh)
        {
            Refresh(settledOnly: false, parallel: true);
            return Combine(_digests);
        }
    }

    /// <summary>XxHash128 of segment <paramref name="segment"/> of the block (1 MiB appends).</summary>
    public static UInt128 HashSegment(RamBlock block, int segment)
    {
        var h = new XxHash128();
        var start = segment * SegmentBytes;
        var end = Math.Min(block.SizeBytes, start + SegmentBytes);
        var basePtr = block.BasePointer;
        for (var offset = start; offset < end; offset += 1 << 20)
        {
            var length = (int)Math.Min(1 << 20, end - offset);
            h.Append(new ReadOnlySpan<byte>(basePtr + offset, length));
        }

        return h.GetCurrentHashAsUInt128();
    }

    /// <summary>XxHash128 over (segment index as int64 LE, segment digest as UInt128 LE) in segment order.</summary>
    public static UInt128 Combine(ReadOnlySpan<UInt128> segments)
    {
        var top = new XxHash128();
        Span<byte> entry = stackalloc byte[24];
        for (var i = 0; i < segments.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(entry, i);
            BinaryPrimitives.WriteUInt128LittleEndian(entry[8..], segments[i]);
            top.Append(entry);
        }

        return top.GetCurrentHashAsUInt128();
    }
}
