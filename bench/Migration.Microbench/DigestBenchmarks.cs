using System.IO.Hashing;
using BenchmarkDotNet.Attributes;

namespace Migration.Microbench;

/// <summary>Candidate digests for end-to-end RAM verification, over 64 MiB; memcpy of the same size for scale.</summary>
public class DigestBenchmarks
{
    private const int Size = 64 << 20;
    private byte[] _data = [];
    private byte[] _copy = [];

    [GlobalSetup]
    public void Setup()
    {
        _data = BenchData.Random(Size);
        _copy = GC.AllocateUninitializedArray<byte>(Size, pinned: true);
        _data.CopyTo(_copy, 0); // touch the destination once
    }

    [Benchmark, BytesPerOperation(Size)]
    public UInt128 XxHash128_64MiB() => XxHash128.HashToUInt128(_data);

    [Benchmark, BytesPerOperation(Size)]
    public ulong XxHash3_64MiB() => XxHash3.HashToUInt64(_data);

    [Benchmark, BytesPerOperation(Size)]
    public void Memcpy_64MiB() => _data.AsSpan().CopyTo(_copy);
}
