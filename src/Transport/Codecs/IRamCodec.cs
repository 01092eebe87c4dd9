namespace Migration.Transport.Codecs;

/// <summary>
/// Wire id of a RAM codec (one byte in the RAM packet). 0 is reserved as invalid.
/// RAM only: device-state packets never pass through a codec.
/// </summary>
public enum CodecId : byte
{
    None = 1,
    Zstd = 2,
    Lz4 = 3,
}

/// <summary>
/// A RAM compression method, in the spirit of QEMU's MultiFDMethods. One instance per channel and
/// direction (create with <see cref="IRamCodecFactory"/>), used by one thread at a time; Dispose
/// returns everything it rented.
/// </summary>
public interface IRamCodec : IDisposable
{
    CodecId Id { get; }

    /// <summary>Worst-case output size for <paramref name="inputLength"/> input bytes.</summary>
    int MaxCompressedLength(int inputLength);

    /// <summary>Compresses the concatenated normal pages of one packet; returns bytes written to destination.</summary>
    int Compress(ReadOnlySpan<byte> pages, Span<byte> destination);

    /// <summary>
    /// Decompresses into <paramref name="destination"/>, whose length is exactly the expected decompressed size
    /// (normal pages x 4096). Throws <see cref="CodecException"/> if the input is malformed or does not decompress
    /// to exactly that size.
    /// </summary>
    void Decompress(ReadOnlySpan<byte> compressed, Span<byte> destination);
}

/// <summary>Creates per-channel codec instances; registered once per <see cref="CodecId"/>.</summary>
public interface IRamCodecFactory
{
    CodecId Id { get; }
    string Name { get; }
    IRamCodec Create(int level);
}

public sealed class CodecException(string message) : Exception(message);
