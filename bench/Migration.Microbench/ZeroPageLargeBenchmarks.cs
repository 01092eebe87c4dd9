using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Migration.Transport.ZeroPages;

namespace Migration.Microbench;

/// <summary>
/// Zero-page detection over 64 MiB of zero pages: unlike the 512 KiB packet (L2-resident), this streams from
/// DRAM, which is what scanning a guest's RAM really does. Page-aligned native memory, touched once at setup.
/// </summary>
public unsafe class ZeroPageLargeBenchmarks
{
    private const int Size = 64 << 20;
    private const int PageCount = Size / BenchData.PageSize;
    private byte* _memory;
    private readonly bool[] _flags = new bool[PageCount];

    [GlobalSetup]
    public void Setup()
    {
        _memory = (byte*)NativeMemory.AlignedAlloc(Size, BenchData.PageSize);
        NativeMemory.Clear(_memory, Size);
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_memory);

    [Benchmark, BytesPerOperation(Size)]
    public int ZeroPages_64MiB() => ZeroPageDetector.ClassifyPages(new ReadOnlySpan<byte>(_memory, Size), PageCount, _flags);
}
