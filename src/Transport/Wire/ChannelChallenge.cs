using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// First message on a new channel, server (destination) → client (source), 24 bytes little-endian:
/// <code>
/// off size field
///   0    4 magic     0x4843474D ("MGCH")
///   4    2 version   1
///   6    2 reserved  0
///   8   16 nonce     random, fresh per connection
/// </code>
/// </summary>
public readonly record struct ChannelChallenge(ChallengeNonce Nonce)
{
    public const int Size = 24;

    public ushort Version => WireConstants.CurrentVersion;

    /// <summary>A challenge with a fresh random nonce.</summary>
    public static ChannelChallenge Create() => new(ChallengeNonce.Create());

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, WireConstants.ChallengeMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], WireConstants.CurrentVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
        Nonce.WriteTo(destination[8..]);
    }

    /// <summary>Reads and validates; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ChannelChallenge value, out string error) =>
        TryRead(source, WireError.NoChannel, out value, out error);

    /// <summary>Reads and validates (client side); error texts name <paramref name="channelIndex"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, int channelIndex, out ChannelChallenge value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channelIndex, "channel challenge", source.Length, Size);
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic != WireConstants.ChallengeMagic)
        {
            error = WireError.Magic(channelIndex, "challenge", magic, WireConstants.ChallengeMagic);
            return false;
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(source[4..]);
        if (version != WireConstants.CurrentVersion)
        {
            error = WireError.Version(channelIndex, version);
            return false;
        }

        ushort reserved = BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        if (reserved != 0)
        {
            error = WireError.At(channelIndex, $"challenge reserved bytes 0x{reserved:X4} set, expected 0");
            return false;
        }

        value = new ChannelChallenge(ChallengeNonce.Read(source[8..]));
        error = string.Empty;
        return true;
    }
}
