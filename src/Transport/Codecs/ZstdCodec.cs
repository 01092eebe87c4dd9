using ZstdSharp;

namespace Migration.Transport.Codecs;

/// <summary>
/// zstd (ZstdSharp.Port, managed port of libzstd). One <see cref="Compressor"/> and one <see cref="Decompressor"/>
/// per instance, created lazily on first use and reused for every packet, so the steady state allocates nothing:
/// only the span overloads are called. Not thread-safe: one channel, one thread at a time (see <see cref="IRamCodec"/>).
/// Dispose frees both native-style contexts.
/// </summary>
public sealed class ZstdCodec : IRamCodec
{
    /// <summary>QEMU's multifd-zstd-level default: level 1 is the fastest positive level.</summary>
    public const int DefaultLevel = 1;

    private Compressor? _compressor;     // created on first Compress, owned by this instance
    private Decompressor? _decompressor; // created on first Decompress, owned by this instance
    private bool _disposed;

    /// <param name="level">zstd level (negative = fast modes, 1..22); 0 selects <see cref="DefaultLevel"/>.</param>
    public ZstdCodec(int level = DefaultLevel)
    {
        if (level == 0) level = DefaultLevel;
        if (level < Compressor.MinCompressionLevel || level > Compressor.MaxCompressionLevel)
            throw new ArgumentOutOfRangeException(nameof(level), level,
                $"zstd level must be in [{Compressor.MinCompressionLevel}, {Compressor.MaxCompressionLevel}] (0 = default {DefaultLevel})");
        Level = level;
    }

    public CodecId Id => CodecId.Zstd;
    public int Level { get; }

    public int MaxCompressedLength(int inputLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputLength);
        return (int)Compressor.GetCompressBoundLong((ulong)inputLength);
    }

    public int Compress(ReadOnlySpan<byte> pages, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (pages.IsEmpty) return 0;
        var compressor = _compressor ??= new Compressor(Level);
        try
        {
            if (compressor.TryWrap(pages, destination, out var written)) return written;
        }
        catch (ZstdException e)
        {
            throw new CodecException($"zstd: compressing {pages.Length} bytes failed: {e.Message}");
        }
        throw new CodecException(
            $"zstd: destination of {destination.Length} bytes too small for {pages.Length} input bytes (bound {MaxCompressedLength(pages.Length)})");
    }

    public void Decompress(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (compressed.IsEmpty || destination.IsEmpty)
        {
            if (compressed.Length == 0 && destination.Length == 0) return;
            throw new CodecException($"zstd: {compressed.Length} compressed bytes cannot produce exactly {destination.Length} bytes");
        }
        var decompressor = _decompressor ??= new Decompressor();
        int written;
        try
        {
            // TryUnwrap returns false only when the output does not fit; every other malformation throws.
            if (!decompressor.TryUnwrap(compressed, destination, out written))
                throw new CodecException(
                    $"zstd: {compressed.Length} compressed bytes decompress to more than the expected {destination.Length} bytes");
        }
        catch (ZstdException e)
        {
            throw new CodecException($"zstd: malformed payload of {compressed.Length} bytes (expected {destination.Length} bytes out): {e.Message}");
        }
        if (written != destination.Length)
            throw new CodecException($"zstd: {compressed.Length} compressed bytes decompressed to {written} bytes, expected exactly {destination.Length}");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _compressor?.Dispose();
        _decompressor?.Dispose();
        _compressor = null;
        _decompressor = null;
    }
}

/// <summary>Factory for <see cref="ZstdCodec"/>; level 0 means <see cref="ZstdCodec.DefaultLevel"/>.</summary>
public sealed class ZstdCodecFactory : IRamCodecFactory
{
    public CodecId Id => CodecId.Zstd;
    public string Name => "zstd";
    public IRamCodec Create(int level) => new ZstdCodec(level);
}
