using BenchmarkDotNet.Attributes;
using Migration.Transport.Codecs;

namespace Migration.Microbench;

/// <summary>
/// RAM codecs on one 512 KiB packet. Throughput is in uncompressed bytes for both directions; the compressed
/// size is printed once at setup so the ratio is visible next to the speed.
/// </summary>
public class CodecBenchmarks
{
    private IRamCodec _codec = null!;
    private byte[] _input = [];
    private byte[] _compressed = [];
    private byte[] _output = [];
    private int _compressedLength;

    [Params("zstd-1", "lz4")]
    public string Codec { get; set; } = "zstd-1";

    [Params("random", "mixed")]
    public string Data { get; set; } = "random";

    [GlobalSetup]
    public void Setup()
    {
        _codec = Codec == "lz4" ? new Lz4Codec() : new ZstdCodec(1);
        _input = Data == "random" ? BenchData.Random(BenchData.PacketBytes) : BenchData.Mixed(BenchData.PacketBytes);
        _compressed = new byte[_codec.MaxCompressedLength(_input.Length)];
        _output = new byte[_input.Length];
        _compressedLength = _codec.Compress(_input, _compressed);
        _codec.Decompress(_compressed.AsSpan(0, _compressedLength), _output);
        Console.WriteLine($"// ratio {Codec}/{Data}: {_input.Length} -> {_compressedLength} bytes ({100.0 * _compressedLength / _input.Length:F1} %)");
    }

    [GlobalCleanup]
    public void Cleanup() => _codec.Dispose();

    [Benchmark, BytesPerOperation(BenchData.PacketBytes)]
    public int Compress() => _codec.Compress(_input, _compressed);

    [Benchmark, BytesPerOperation(BenchData.PacketBytes)]
    public void Decompress() => _codec.Decompress(_compressed.AsSpan(0, _compressedLength), _output);
}
