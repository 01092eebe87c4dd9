using System.IO.MemoryMappedFiles;

namespace Migration.Devices.Ram;

/// <summary>
/// One guest RAM block: <see cref="PageCount"/> pages of 4 KiB in a memory-mapped file, plus its dirty bitmap.
/// Memory is owned by the block and unmapped on Dispose. Any thread may read or write pages; writers that model
/// the guest must call <see cref="MarkDirty"/> after writing (write-then-mark, so a sync never loses a write).
/// Spans and Memory handed out are valid only until Dispose; using them afterwards is a use-after-free, so
/// the owner must stop every reader/writer (workload, channels) before disposing.
/// </summary>
public sealed unsafe class RamBlock : IDisposable
{
    public const int PageSize = 4096;
    public const int PageShift = 12;

    /// <summary>
    /// Where temporary backing files go: /dev/shm (memory, like QEMU's memory-backend-file on hugetlbfs/shm)
    /// when it exists, so guest RAM is never written back to a disk; else the system temp directory.
    /// </summary>
    public static string TemporaryDirectory { get; } =
        Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
    /// <summary>Most pages one span can cover (a Span length is an int).</summary>
    public const int MaxPagesPerSpan = int.MaxValue / PageSize;

    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly string? _deleteOnDispose;
    private readonly DirtyBitmap _dirty;
    private int _disposed;

    /// <summary>A block in private anonymous memory (see <see cref="AnonymousMapping"/>).</summary>
    private RamBlock(string name, long sizeBytes, byte* anonymous, bool recycled = false)
    {
        Recycled = recycled;
        Name = name;
        SizeBytes = sizeBytes;
        PageCount = (int)(sizeBytes >> PageShift);
        _dirty = new DirtyBitmap(PageCount);
        _segmentViews = new UnmanagedMemoryManager?[(sizeBytes + (1L << MemorySegmentShift) - 1) >> MemorySegmentShift];
        _base = anonymous;
    }

    private RamBlock(string name, long sizeBytes, MemoryMappedFile file, MemoryMappedViewAccessor view, string? deleteOnDispose)
    {
        Name = name;
        SizeBytes = sizeBytes;
        PageCount = (int)(sizeBytes >> PageShift);
        _file = file;
        _view = view;
        _deleteOnDispose = deleteOnDispose;
        _dirty = new DirtyBitmap(PageCount);
        _segmentViews = new UnmanagedMemoryManager?[(sizeBytes + (1L << MemorySegmentShift) - 1) >> MemorySegmentShift];
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
    }

    /// <summary>
    /// Creates a block of <paramref name="sizeBytes"/> (a positive multiple of 4096) backed by
    /// <see cref="RamBlockOptions.BackingFile"/> (created or resized, kept on dispose) or, by default, by private
    /// anonymous memory with transparent huge pages on Linux (<see cref="AnonymousMapping"/>), elsewhere by a
    /// temporary file (deleted on dispose; on Unix it is unlinked at once so a crash leaves nothing behind).
    /// </summary>
    public static RamBlock Create(string name, long sizeBytes, RamBlockOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (sizeBytes <= 0 || sizeBytes % PageSize != 0)
            throw new ArgumentException($"RAM block '{name}': size {sizeBytes} must be a positive multiple of {PageSize}", nameof(sizeBytes));
        if ((sizeBytes >> PageShift) > int.MaxValue)
            throw new ArgumentException($"RAM block '{name}': size {sizeBytes} exceeds {int.MaxValue} pages", nameof(sizeBytes));
        options ??= new RamBlockOptions();
        if (options.BackingFile is null && AnonymousMapping.Supported)
        {
            var anonymous = new RamBlock(name, sizeBytes, AnonymousMapping.Map(sizeBytes));
            if (options.Prefault)
                anonymous.Prefault();
            return anonymous;
        }

        bool temporary = options.BackingFile is null;
        string path = options.BackingFile ?? Path.Combine(TemporaryDirectory, $"ram-{name}-{Guid.NewGuid():N}.bin");
        MemoryMappedFile? file = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            var stream = new FileStream(path, temporary ? FileMode.CreateNew : FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
            try
            {
                stream.SetLength(sizeBytes); // sparse: pages cost nothing until touched
                file = MemoryMappedFile.CreateFromFile(stream, null, sizeBytes, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
            view = file.CreateViewAccessor(0, sizeBytes, MemoryMappedFileAccess.ReadWrite);
            string? deleteLater = null;
            if (temporary)
            {
                if (OperatingSystem.IsWindows()) deleteLater = path;
                else File.Delete(path); // the mapping keeps the inode alive
            }
            var block = new RamBlock(name, sizeBytes, file, view, deleteLater);
            if (options.Prefault)
                block.Prefault();
            return block;
        }
        catch
        {
            view?.Dispose();
            file?.Dispose();
            if (temporary)
                TryDelete(path);
            throw;
        }
    }

    /// <summary>
    /// A block over anonymous memory taken from a <see cref="GuestMemoryPool"/> (already touched: no first-touch
    /// faults). Its pages may hold a former guest's bytes until written: the owner must write or zero every page before
    /// anything else reads the block (IncomingRamTracker does, before the guest resumes).
    /// </summary>
    internal static RamBlock OverPooledMemory(string name, long sizeBytes, byte* memory) => new(name, sizeBytes, memory, recycled: true);

    /// <summary>True if the memory came from a <see cref="GuestMemoryPool"/> and may hold a former guest's bytes.</summary>
    public bool Recycled { get; }

    /// <summary>True for private anonymous memory (the only kind a <see cref="GuestMemoryPool"/> takes back).</summary>
    internal bool IsAnonymous => _view is null;

    /// <summary>
    /// Ends this block without releasing its anonymous memory, whose ownership passes to the caller (the pool).
    /// False (and nothing changes) if the block is file-backed or already disposed.
    /// </summary>
    internal bool TryDetachMemory(out nint memory)
    {
        memory = 0;
        if (_view is not null || Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        memory = (nint)_base;
        return true;
    }

    public string Name { get; }
    public long SizeBytes { get; }
    public int PageCount { get; }

    /// <summary>Base address of the mapping; valid until Dispose.</summary>
    public byte* BasePointer
    {
        get
        {
            ThrowIfDisposed();
            return _base;
        }
    }

    /// <summary>The page's bytes (no dirty marking). Valid until Dispose.</summary>
    public Span<byte> Page(long pageIndex)
    {
        CheckRange(pageIndex, 1);
        return new Span<byte>(_base + (pageIndex << PageShift), PageSize);
    }

    /// <summary>Contiguous pages [first, first+count) as one span (no dirty marking).</summary>
    public Span<byte> Pages(long firstPage, int count)
    {
        CheckRange(firstPage, count);
        return new Span<byte>(_base + (firstPage << PageShift), count << PageShift);
    }

    /// <summary>
    /// A Memory&lt;byte&gt; view over pages [first, first+count) for async socket I/O (no copy). On the per-packet path:
    /// a run of up to <see cref="MemorySegmentOverlap"/> bytes is a slice of one of the block's segment views (one
    /// manager per GiB, made on first use, thread-safe), so no allocation per call; a longer run gets its own view.
    /// </summary>
    public Memory<byte> PagesMemory(long firstPage, int count)
    {
        CheckRange(firstPage, count);
        var offset = firstPage << PageShift;
        var length = count << PageShift;
        var segment = (int)(offset >> MemorySegmentShift);
        var within = offset - ((long)segment << MemorySegmentShift);
        if (within + length > (1L << MemorySegmentShift) + MemorySegmentOverlap)
        {
            return new UnmanagedMemoryManager(_base + offset, length).Memory;
        }

        var view = Volatile.Read(ref _segmentViews[segment]);
        if (view is null)
        {
            var start = (long)segment << MemorySegmentShift;
            var segmentLength = (int)Math.Min((1L << MemorySegmentShift) + MemorySegmentOverlap, SizeBytes - start);
            Interlocked.CompareExchange(ref _segmentViews[segment], new UnmanagedMemoryManager(_base + start, segmentLength), null);
            view = _segmentViews[segment]!;
        }

        return view.Memory.Slice((int)within, length);
    }

    /// <summary>Segment views of <see cref="PagesMemory"/> cover 1 GiB each (Memory&lt;T&gt; lengths are int) ...</summary>
    private const int MemorySegmentShift = 30;

    /// <summary>... plus this much of the next GiB, so that a run starting near a segment's end is still one slice.</summary>
    private const long MemorySegmentOverlap = 64L << 20;

    private readonly UnmanagedMemoryManager?[] _segmentViews;

    /// <summary>Guest-style write: copies data into the page at offset and marks the page dirty.</summary>
    public void Write(long pageIndex, int offsetInPage, ReadOnlySpan<byte> data)
    {
        CheckRange(pageIndex, 1);
        if (offsetInPage < 0 || offsetInPage + (long)data.Length > PageSize)
            throw new ArgumentOutOfRangeException(nameof(offsetInPage), $"write of {data.Length} bytes at offset {offsetInPage} crosses the end of page {pageIndex} of block '{Name}'");
        data.CopyTo(new Span<byte>(_base + (pageIndex << PageShift) + offsetInPage, data.Length));
        _dirty.Mark(pageIndex); // after the write: a fetch that misses this bit sees the data in the next round
    }

    /// <summary>Marks a page dirty (thread-safe, lock-free).</summary>
    public void MarkDirty(long pageIndex)
    {
        CheckRange(pageIndex, 1);
        _dirty.Mark(pageIndex);
    }

    /// <summary>The dirty bitmap of this block.</summary>
    public DirtyBitmap Dirty => _dirty;

    /// <summary>
    /// Touches every page now (see <see cref="RamBlockOptions.Prefault"/>), on two threads for large blocks.
    /// Each touch is an atomic OR with 0 on the page's first int, so it never changes content and is safe even
    /// against concurrent guest writers.
    /// </summary>
    public void Prefault()
    {
        ThrowIfDisposed();
        const int parallelThreshold = 16384; // 64 MiB: below that a second thread costs more than it saves
        if (PageCount < parallelThreshold)
        {
            PrefaultRange(0, PageCount);
            return;
        }
        int half = PageCount / 2;
        var other = Task.Factory.StartNew(() => PrefaultRange(half, PageCount), TaskCreationOptions.LongRunning);
        PrefaultRange(0, half);
        other.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Faults in pages [firstPage, firstPage+count) for writing without changing their content: anonymous memory with
    /// madvise(MADV_POPULATE_WRITE) (the kernel allocates and clears them, huge pages where THP applies); otherwise, or
    /// on a kernel without it, an atomic OR with 0 on each page's first int. Safe against concurrent writers. Any
    /// thread; the caller keeps the block alive meanwhile (RamPopulator.Dispose waits for its threads before the owner disposes the block).
    /// </summary>
    public void Populate(long firstPage, int count)
    {
        CheckRange(firstPage, count);
        if (_view is null)
        {
            AnonymousMapping.PopulateWrite(_base + (firstPage << PageShift), (long)count << PageShift);
            return;
        }

        for (long i = firstPage; i < firstPage + count; i++)
            Interlocked.Or(ref *(int*)(_base + (i << PageShift)), 0);
    }

    private void PrefaultRange(int first, int end)
    {
        for (long i = first; i < end; i++)
            Interlocked.Or(ref *(int*)(_base + (i << PageShift)), 0);
    }

    /// <summary>XxHash128 over all pages in order (a full recomputation; <see cref="SegmentDigests"/> keeps the same value incrementally).</summary>
    public UInt128 ComputeDigest()
    {
        ThrowIfDisposed();
        // Two levels so the work spreads over the cores: XxHash128 of each 512 KiB segment in parallel, then
        // XxHash128 over (segment index, segment digest) in order.
        var digests = new UInt128[SegmentDigests.SegmentCount(SizeBytes)];
        Parallel.For(0, digests.Length, i => digests[i] = SegmentHashes.HashSegment(this, i));
        return SegmentHashes.Combine(digests);
    }

    /// <summary>
    /// Releases the memory (anonymous blocks: at once, the address range a few seconds later, see
    /// <see cref="AnonymousMapping.Retire"/>) and deletes a temporary backing file. Idempotent.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_view is null)
        {
            AnonymousMapping.Retire(_base, SizeBytes);
            return;
        }

        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file!.Dispose();
        if (_deleteOnDispose is not null)
            TryDelete(_deleteOnDispose);
    }

    public override string ToString() => $"RamBlock '{Name}' ({PageCount} pages)";

    private void CheckRange(long firstPage, int count)
    {
        ThrowIfDisposed();
        if ((ulong)firstPage >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(firstPage), $"page {firstPage} beyond block '{Name}' of {PageCount} pages");
        if (count <= 0 || count > MaxPagesPerSpan)
            throw new ArgumentOutOfRangeException(nameof(count), $"page count {count} for block '{Name}' must be in 1..{MaxPagesPerSpan}");
        if (firstPage + count > PageCount)
            throw new ArgumentOutOfRangeException(nameof(count), $"pages {firstPage}..{firstPage + count - 1} beyond block '{Name}' of {PageCount} pages");
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0)
            throw new ObjectDisposedException($"RAM block '{Name}'");
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
