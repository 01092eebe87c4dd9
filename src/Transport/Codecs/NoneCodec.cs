namespace Migration.Transport.Codecs;

/// <summary>
/// Identity "codec": Compress copies, Decompress checks the length and copies. Exists for symmetry and tests;
/// the real send path skips codec calls entirely for <see cref="CodecId.None"/> and sends the pages as they are.
/// Stateless, so one instance could be shared, but the factory still hands out one per channel like the others.
/// </summary>
public sealed class NoneCodec : IRamCodec
{
    public CodecId Id => CodecId.None;

    public int MaxCompressedLength(int inputLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputLength);
        return inputLength;
    }

    public int Compress(ReadOnlySpan<byte> pages, Span<byte> destination)
    {
        if (destination.Length < pages.Length)
            throw new CodecException($"none: destination of {destination.Length} bytes is smaller than the {pages.Length} input bytes");
        pages.CopyTo(destination);
        return pages.Length;
    }

    public void Decompress(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        if (compressed.Length != destination.Length)
            throw new CodecException($"none: payload is {compressed.Length} bytes, expected exactly {destination.Length}");
        compressed.CopyTo(destination);
    }

    public void Dispose() { }
}

/// <summary>Factory for <see cref="NoneCodec"/>; the level is ignored.</summary>
public sealed class NoneCodecFactory : IRamCodecFactory
{
    public CodecId Id => CodecId.None;
    public string Name => "none";
    public IRamCodec Create(int level) => new NoneCodec();
}
