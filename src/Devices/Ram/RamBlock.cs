// CONTRACT STUB: public surface fixed by the lead; the Devices helper implements the bodies.
namespace Migration.Devices.Ram;

/// <summary>Options for creating a RAM block.</summary>
public sealed record RamBlockOptions
{
    /// <summary>Backing file path; null = a temporary file deleted on dispose.</summary>
    public string? BackingFile { get; init; }
    /// <summary>Touch every page at creation so later first touches do not fault (3-5 us per page here).</summary>
    public bool Prefault { get; init; }
}

/// <summary>
/// One guest RAM block: <see cref="PageCount"/> pages of 4 KiB in a memory-mapped file, plus its dirty bitmap.
/// Memory is owned by the block and unmapped on Dispose. Any thread may read or write pages; writers that model
/// the guest must call <see cref="MarkDirty"/> after writing (write-then-mark, so a sync never loses a write).
/// </summary>
public sealed unsafe class RamBlock : IDisposable
{
    public const int PageSize = 4096;
    public const int PageShift = 12;

    public static RamBlock Create(string name, long sizeBytes, RamBlockOptions? options = null) => throw new NotImplementedException();

    public string Name => throw new NotImplementedException();
    public long SizeBytes => throw new NotImplementedException();
    public int PageCount => throw new NotImplementedException();

    /// <summary>Base address of the mapping; valid until Dispose.</summary>
    public byte* BasePointer => throw new NotImplementedException();

    /// <summary>The page's bytes (no dirty marking). Valid until Dispose.</summary>
    public Span<byte> Page(long pageIndex) => throw new NotImplementedException();

    /// <summary>Contiguous pages [first, first+count) as one span (no dirty marking).</summary>
    public Span<byte> Pages(long firstPage, int count) => throw new NotImplementedException();

    /// <summary>A Memory&lt;byte&gt; view over pages [first, first+count) for async socket I/O (no copy).</summary>
    public Memory<byte> PagesMemory(long firstPage, int count) => throw new NotImplementedException();

    /// <summary>Guest-style write: copies data into the page at offset and marks the page dirty.</summary>
    public void Write(long pageIndex, int offsetInPage, ReadOnlySpan<byte> data) => throw new NotImplementedException();

    /// <summary>Marks a page dirty (thread-safe, lock-free).</summary>
    public void MarkDirty(long pageIndex) => throw new NotImplementedException();

    /// <summary>The dirty bitmap of this block.</summary>
    public DirtyBitmap Dirty => throw new NotImplementedException();

    /// <summary>Touches every page now (see <see cref="RamBlockOptions.Prefault"/>).</summary>
    public void Prefault() => throw new NotImplementedException();

    /// <summary>XxHash128 over all pages in order.</summary>
    public UInt128 ComputeDigest() => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}

/// <summary>
/// Thread-safe dirty bitmap, one bit per page, 64 pages per word.
/// <see cref="FetchAndClear"/> atomically swaps each word with 0 (like KVM_GET_DIRTY_LOG + clear),
/// so a bit set concurrently is either in this fetch or in the next, never lost.
/// </summary>
public sealed class DirtyBitmap
{
    public DirtyBitmap(long pageCount) => throw new NotImplementedException();
    public long PageCount => throw new NotImplementedException();
    public int WordCount => throw new NotImplementedException();
    public void Mark(long page) => throw new NotImplementedException();
    public bool IsDirty(long page) => throw new NotImplementedException();
    public void MarkAll() => throw new NotImplementedException();
    /// <summary>Atomically moves all bits into <paramref name="destination"/> (length >= WordCount) and clears them; returns the number of dirty pages fetched.</summary>
    public long FetchAndClear(Span<ulong> destination) => throw new NotImplementedException();
    /// <summary>Number of dirty pages now (racy snapshot, for estimates).</summary>
    public long CountDirty() => throw new NotImplementedException();
}
