using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Migration.Transport.ZeroPages;

namespace Migration.Microbench;

/// <summary>
/// Zero-page detection over one 512 KiB packet (128 pages), all-zero or random pages; every variant writes one
/// flag per page like ClassifyPages. For random pages GB/s counts classified bytes (only the first bytes are read).
/// Pages sit in page-aligned native memory, as guest RAM does (an mmap), so vector loads never split cache lines.
/// </summary>
public unsafe class ZeroPageBenchmarks
{
    private byte* _memory;
    private ReadOnlySpan<byte> Pages => new(_memory, BenchData.PacketBytes);
    private readonly bool[] _flags = new bool[BenchData.PacketPages];

    [Params("zero", "random")]
    public string Data { get; set; } = "zero";

    [GlobalSetup]
    public void Setup()
    {
        _memory = (byte*)NativeMemory.AlignedAlloc(BenchData.PacketBytes, BenchData.PageSize);
        var source = Data == "zero" ? BenchData.Zero(BenchData.PacketBytes) : BenchData.Random(BenchData.PacketBytes);
        source.CopyTo(new Span<byte>(_memory, BenchData.PacketBytes));
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_memory);

    [Benchmark(Baseline = true), BytesPerOperation(BenchData.PacketBytes)]
    public int Vectorized() => ZeroPageDetector.ClassifyPages(Pages, BenchData.PacketPages, _flags);

    [Benchmark, BytesPerOperation(BenchData.PacketBytes)]
    public int Scalar()
    {
        var zeros = 0;
        for (var p = 0; p < BenchData.PacketPages; p++)
            zeros += (_flags[p] = ZeroPageDetector.IsZeroPageScalar(Pages.Slice(p * BenchData.PageSize, BenchData.PageSize))) ? 1 : 0;
        return zeros;
    }

    /// <summary>The BCL's own vectorized search, for reference.</summary>
    [Benchmark, BytesPerOperation(BenchData.PacketBytes)]
    public int BclIndexOfAnyExcept()
    {
        var zeros = 0;
        for (var p = 0; p < BenchData.PacketPages; p++)
            zeros += (_flags[p] = Pages.Slice(p * BenchData.PageSize, BenchData.PageSize).IndexOfAnyExcept((byte)0) < 0) ? 1 : 0;
        return zeros;
    }
}
