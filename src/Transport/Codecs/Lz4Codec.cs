using K4os.Compression.LZ4;

namespace Migration.Transport.Codecs;

/// <summary>
/// LZ4 block format (K4os.Compression.LZ4, span overloads of <see cref="LZ4Codec"/>). Stateless apart from the
/// level, allocates nothing per call. The block format carries no length, so the receiver relies on the
/// expected size (normal pages x 4096) and the safe decoder, which never writes beyond the destination.
/// </summary>
public sealed class Lz4Codec : IRamCodec
{
    /// <summary>Level 0 = <see cref="LZ4Level.L00_FAST"/>.</summary>
    public const int DefaultLevel = 0;

    /// <param name="level">0-2 = fast (L00), 3-9 = HC, 10-11 = OPT, 12 = MAX.</param>
    public Lz4Codec(int level = DefaultLevel)
    {
        if (level < 0 || level > (int)LZ4Level.L12_MAX)
            throw new ArgumentOutOfRangeException(nameof(level), level, $"lz4 level must be in [0, {(int)LZ4Level.L12_MAX}] (0 = fast)");
        Level = level < (int)LZ4Level.L03_HC ? LZ4Level.L00_FAST : (LZ4Level)level;
    }

    public CodecId Id => CodecId.Lz4;
    public LZ4Level Level { get; }

    public int MaxCompressedLength(int inputLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputLength);
        return LZ4Codec.MaximumOutputSize(inputLength);
    }

    public int Compress(ReadOnlySpan<byte> pages, Span<byte> destination)
    {
        if (pages.IsEmpty) return 0;
        var written = LZ4Codec.Encode(pages, destination, Level);
        if (written <= 0)
            throw new CodecException(
                $"lz4: destination of {destination.Length} bytes too small for {pages.Length} input bytes (bound {MaxCompressedLength(pages.Length)})");
        return written;
    }

    public void Decompress(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        if (compressed.IsEmpty || destination.IsEmpty)
        {
            if (compressed.Length == 0 && destination.Length == 0) return;
            throw new CodecException($"lz4: {compressed.Length} compressed bytes cannot produce exactly {destination.Length} bytes");
        }
        int written;
        try
        {
            written = LZ4Codec.Decode(compressed, destination);
        }
        catch (Exception e) when (e is not CodecException)
        {
            // The safe decoder reports errors as -1; this only guards against surprises inside the library.
            throw new CodecException($"lz4: malformed payload of {compressed.Length} bytes (expected {destination.Length} bytes out): {e.Message}");
        }
        if (written < 0)
            throw new CodecException($"lz4: malformed payload of {compressed.Length} bytes, or it decodes to more than the expected {destination.Length} bytes");
        if (written != destination.Length)
            throw new CodecException($"lz4: {compressed.Length} compressed bytes decompressed to {written} bytes, expected exactly {destination.Length}");
    }

    public void Dispose() { }
}

/// <summary>Factory for <see cref="Lz4Codec"/>; level 0 means fast (L00).</summary>
public sealed class Lz4CodecFactory : IRamCodecFactory
{
    public CodecId Id => CodecId.Lz4;
    public string Name => "lz4";
    public IRamCodec Create(int level) => new Lz4Codec(level);
}
