using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// Server's verdict on a hello, server → client, 12 bytes little-endian. After any status other than
/// Accepted the server closes the connection.
/// <code>
/// off size field
///   0    4 magic     0x4148474D ("MGHA")
///   4    2 version   1 (the server's version)
///   6    2 status    HelloStatus
///   8    4 reserved  0
/// </code>
/// </summary>
public readonly record struct ChannelHelloAck(HelloStatus Status)
{
    public const int Size = 12;

    public ushort Version => WireConstants.CurrentVersion;

    public bool Accepted => Status == HelloStatus.Accepted;

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, WireConstants.HelloAckMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], WireConstants.CurrentVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], (ushort)Status);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], 0);
    }

    /// <summary>Reads and validates; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ChannelHelloAck value, out string error) =>
        TryRead(source, WireError.NoChannel, out value, out error);

    /// <summary>Reads and validates (client side); error texts name <paramref name="channelIndex"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, int channelIndex, out ChannelHelloAck value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channelIndex, "hello ack", source.Length, Size);
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic != WireConstants.HelloAckMagic)
        {
            error = WireError.Magic(channelIndex, "hello ack", magic, WireConstants.HelloAckMagic);
            return false;
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(source[4..]);
        if (version != WireConstants.CurrentVersion)
        {
            error = WireError.Version(channelIndex, version);
            return false;
        }

        var status = (HelloStatus)BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        if (status is < HelloStatus.Accepted or > HelloStatus.Duplicate)
        {
            error = WireError.At(channelIndex, $"unknown hello status {(ushort)status}, expected 1..6");
            return false;
        }

        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        if (reserved != 0)
        {
            error = WireError.At(channelIndex, $"hello ack reserved bytes 0x{reserved:X8} set, expected 0");
            return false;
        }

        value = new ChannelHelloAck(status);
        error = string.Empty;
        return true;
    }
}
