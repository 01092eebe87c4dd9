using System.Numerics;

namespace Migration.Devices.Ram;

/// <summary>
/// Thread-safe dirty bitmap, one bit per page, 64 pages per word.
/// <see cref="FetchAndClear"/> atomically swaps each word with 0 (like KVM_GET_DIRTY_LOG + clear),
/// so a bit set concurrently is either in this fetch or in the next, never lost.
/// Threading: <see cref="Mark"/> and <see cref="MarkAll"/> may run on any number of threads concurrently with
/// one fetching thread. The words array is allocated at construction and never replaced.
/// </summary>
public sealed class DirtyBitmap
{
    private readonly ulong[] _words;
    private readonly long _pageCount;

    public DirtyBitmap(long pageCount)
    {
        if (pageCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "a dirty bitmap needs at least one page");
        if ((pageCount + 63) / 64 > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "too many pages for one bitmap");
        _pageCount = pageCount;
        _words = new ulong[(pageCount + 63) >> 6];
    }

    public long PageCount => _pageCount;
    public int WordCount => _words.Length;

    /// <summary>A buffer of the right length for <see cref="FetchAndClear"/> (allocate once per scanner).</summary>
    public ulong[] CreateSnapshotBuffer() => new ulong[_words.Length];

    public void Mark(long page)
    {
        CheckPage(page);
        Interlocked.Or(ref _words[page >> 6], 1UL << (int)(page & 63));
    }

    /// <summary>
    /// Whether any page of words [<paramref name="firstWord"/>, firstWord + count) (64 pages a word) is dirty now; the
    /// range is clipped to the bitmap. A racy read for estimates: a concurrent Mark may or may not be seen.
    /// </summary>
    public bool AnyDirtyInWords(int firstWord, int count)
    {
        var end = (int)Math.Min((long)firstWord + Math.Max(0, count), _words.Length);
        for (var w = Math.Max(0, firstWord); w < end; w++)
        {
            if (Volatile.Read(ref _words[w]) != 0)
            {
                return true;
            }
        }

        return false;
    }

    public bool IsDirty(long page)
    {
        CheckPage(page);
        return (Volatile.Read(ref _words[page >> 6]) & (1UL << (int)(page & 63))) != 0;
    }

    /// <summary>
    /// Marks dirty every page whose bit is set in <paramref name="pages"/> (a bitmap in this bitmap's layout, at most
    /// <see cref="WordCount"/> words; bits beyond <see cref="PageCount"/> must be clear). Returns the number of bits given.
    /// </summary>
    public long MarkWords(ReadOnlySpan<ulong> pages)
    {
        if (pages.Length > _words.Length)
            throw new ArgumentException($"page bitmap of {pages.Length} words is longer than the bitmap's {_words.Length} words", nameof(pages));
        long count = 0;
        for (int i = 0; i < pages.Length; i++)
        {
            ulong w = pages[i];
            if (w != 0)
            {
                if (i == _words.Length - 1 && (_pageCount & 63) != 0 && (w >> (int)(_pageCount & 63)) != 0)
                    throw new ArgumentOutOfRangeException(nameof(pages), $"page bitmap marks pages beyond the last page {_pageCount - 1}");
                Interlocked.Or(ref _words[i], w);
                count += BitOperations.PopCount(w);
            }
        }
        return count;
    }

    /// <summary>Marks every valid page dirty (bits beyond <see cref="PageCount"/> stay clear).</summary>
    public void MarkAll()
    {
        int fullWords = (int)(_pageCount >> 6);
        for (int i = 0; i < fullWords; i++)
            Interlocked.Or(ref _words[i], ulong.MaxValue);
        int rest = (int)(_pageCount & 63);
        if (rest != 0)
            Interlocked.Or(ref _words[fullWords], (1UL << rest) - 1);
    }

    /// <summary>Atomically moves all bits into <paramref name="destination"/> (length >= WordCount) and clears them; returns the number of dirty pages fetched.</summary>
    public long FetchAndClear(Span<ulong> destination)
    {
        if (destination.Length < _words.Length)
            throw new ArgumentException($"snapshot buffer of {destination.Length} words is shorter than the bitmap's {_words.Length} words", nameof(destination));
        long count = 0;
        for (int i = 0; i < _words.Length; i++)
        {
            // A plain read of 0 is safe: a bit set after it is picked up by the next fetch.
            ulong w = Volatile.Read(ref _words[i]);
            if (w != 0)
            {
                w = Interlocked.Exchange(ref _words[i], 0);
                count += BitOperations.PopCount(w);
            }
            destination[i] = w;
        }
        destination[_words.Length..].Clear();
        return count;
    }

    /// <summary>Number of dirty pages now (racy snapshot, for estimates).</summary>
    public long CountDirty()
    {
        long count = 0;
        for (int i = 0; i < _words.Length; i++)
            count += BitOperations.PopCount(Volatile.Read(ref _words[i]));
        return count;
    }

    /// <summary>Number of set bits in a fetched snapshot.</summary>
    public static long CountPages(ReadOnlySpan<ulong> snapshot)
    {
        long count = 0;
        foreach (ulong w in snapshot)
            count += BitOperations.PopCount(w);
        return count;
    }

    /// <summary>
    /// Allocation-free iteration over the set bits of a fetched snapshot: writes up to <c>output.Length</c> page
    /// indices, in increasing order, of pages &gt;= <paramref name="cursorPage"/>, and advances the cursor past the
    /// last page written. Returns the number written; 0 means the snapshot is exhausted.
    /// Usage: <c>long cursor = 0; while ((n = CollectPages(snap, ref cursor, pages)) &gt; 0) send(pages[..n]);</c>
    /// </summary>
    public static int CollectPages(ReadOnlySpan<ulong> snapshot, ref long cursorPage, Span<long> output)
    {
        if (cursorPage < 0)
            throw new ArgumentOutOfRangeException(nameof(cursorPage), cursorPage, "cursor must be >= 0");
        long wordIndex = cursorPage >> 6;
        if (output.IsEmpty || wordIndex >= snapshot.Length)
            return 0;
        int count = 0;
        // Bits below the cursor in its first word were already collected.
        ulong word = snapshot[(int)wordIndex] & (ulong.MaxValue << (int)(cursorPage & 63));
        while (true)
        {
            while (word != 0)
            {
                long page = (wordIndex << 6) + BitOperations.TrailingZeroCount(word);
                word &= word - 1;
                output[count++] = page;
                if (count == output.Length)
                {
                    cursorPage = page + 1;
                    return count;
                }
            }
            if (++wordIndex >= snapshot.Length)
            {
                cursorPage = wordIndex << 6;
                return count;
            }
            word = snapshot[(int)wordIndex];
        }
    }

    private void CheckPage(long page)
    {
        if ((ulong)page >= (ulong)_pageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"page {page} beyond bitmap of {_pageCount} pages");
    }
}
