namespace Migration.Devices.Ram;

/// <summary>
/// Which segments of one RAM block changed since their digest was stored (<see cref="SegmentDigests"/>'s marks), and
/// which may hold non-zero bytes. A mark is the refresh round (1-based) in which it was made; 0 means "the stored
/// digest is current". A content flag of 0 means "all zero since <see cref="ClearAsZero"/>".
///
/// Contract (the one <see cref="SegmentDigests"/> documents): writers mark AFTER their bytes are in memory and set the
/// content flag BEFORE the mark; a hasher clears the mark (<see cref="TryTake"/>) BEFORE it hashes and reads the content
/// flag after. So a write that lands during a hash leaves its segment marked for the next one.
/// Threading: every member may be called from any thread; marks and flags are single words read and written with
/// Volatile/Interlocked. Rounds advance only under <see cref="SegmentDigests"/>'s refresh lock.
/// </summary>
internal sealed class SegmentMarks
{
    private const int PagesPerSegmentShift = SegmentDigests.PagesPerSegmentShift;
    private const int WordsPerSegment = 1 << (PagesPerSegmentShift - 6); // dirty-bitmap words (64 pages each) per segment

    private readonly RamBlock _block;
    private readonly long[] _marks;
    private readonly int[] _content;
    private long _round = 1;

    public SegmentMarks(RamBlock block, int count)
    {
        _block = block;
        _marks = new long[count];
        _content = new int[count];
    }

    public int Count => _marks.Length;

    /// <summary>Starts a new round and returns the one that just ended: marks made from now on carry a higher round.</summary>
    public long EndRound() => Interlocked.Increment(ref _round) - 1;

    /// <summary>The round of segment <paramref name="s"/>'s last mark, 0 if its digest is current.</summary>
    public long MarkOf(int s) => Volatile.Read(ref _marks[s]);

    public bool IsMarked(int s) => Volatile.Read(ref _marks[s]) != 0;

    /// <summary>False while segment <paramref name="s"/> is known zero (written only with zeros since <see cref="ClearAsZero"/>).</summary>
    public bool HasContent(int s) => Volatile.Read(ref _content[s]) != 0;

    /// <summary>Segments marked now (racy snapshot).</summary>
    public int MarkedCount()
    {
        var marked = 0;
        for (var s = 0; s < _marks.Length; s++)
        {
            marked += IsMarked(s) ? 1 : 0;
        }

        return marked;
    }

    /// <summary>Whether segment <paramref name="s"/> is marked or has a dirty page in <paramref name="live"/> (racy).</summary>
    public bool MarkedOrDirty(int s, DirtyBitmap live) => IsMarked(s) || live.AnyDirtyInWords(s * WordsPerSegment, WordsPerSegment);

    /// <summary>Marks the segments of pages [first, first+count) after they were written; validates the range.</summary>
    public void Mark(long firstPage, long count, bool content)
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
            if (content && Volatile.Read(ref _content[s]) == 0)
            {
                Volatile.Write(ref _content[s], 1); // before the mark: a hasher that clears the mark then sees it
            }

            Volatile.Write(ref _marks[s], round);
        }
    }

    /// <summary>Marks (with content) every segment with a set bit in a fetched dirty-bitmap snapshot.</summary>
    public void MarkFetched(ReadOnlySpan<ulong> snapshot)
    {
        var round = Volatile.Read(ref _round);
        for (var s = 0; s < _marks.Length; s++)
        {
            var start = s * WordsPerSegment;
            if (start >= snapshot.Length)
            {
                break;
            }

            if (snapshot.Slice(start, Math.Min(WordsPerSegment, snapshot.Length - start)).IndexOfAnyExcept(0UL) >= 0)
            {
                Volatile.Write(ref _content[s], 1);
                Volatile.Write(ref _marks[s], round);
            }
        }
    }

    /// <summary>Marks every segment, with content.</summary>
    public void MarkAll()
    {
        var round = Volatile.Read(ref _round);
        for (var s = 0; s < _marks.Length; s++)
        {
            Volatile.Write(ref _content[s], 1);
            Volatile.Write(ref _marks[s], round);
        }
    }

    /// <summary>Segment <paramref name="s"/> becomes unmarked and known zero (its digest was set to that of zeros).</summary>
    public void ClearAsZero(int s)
    {
        Volatile.Write(ref _content[s], 0);
        Volatile.Write(ref _marks[s], 0);
    }

    /// <summary>
    /// Clears segment <paramref name="s"/>'s mark if it is due: marked, and with <paramref name="settledOnly"/> marked
    /// before <paramref name="round"/> (not by a writer still at work in it). False if not due; the caller then must not
    /// hash it. Clear before hashing: a writer that marks after this makes the segment due again.
    /// </summary>
    public bool TryTake(int s, long round, bool settledOnly)
    {
        while (true)
        {
            var mark = Volatile.Read(ref _marks[s]);
            if (mark == 0 || (settledOnly && mark >= round))
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _marks[s], 0, mark) == mark)
            {
                return true;
            }
        }
    }
}
