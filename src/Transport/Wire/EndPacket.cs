using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// Body of an End packet (16 bytes, little-endian): the last packet of a channel. The receiver compares
/// <see cref="PacketsSent"/> with the number of packets it received on that channel before End (Ram,
/// DeviceState and Sync packets; the End packet itself is not counted).
/// <code>
/// off size field
///   0    8 packetsSent  packets this channel sent before End
///   8    8 reserved     0
/// </code>
/// </summary>
public readonly record struct EndPacket(ulong PacketsSent)
{
    public const int Size = 16;

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, PacketsSent);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], 0);
    }

    /// <summary>Reads and validates; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out EndPacket value, out string error) =>
        TryRead(source, WireError.NoChannel, out value, out error);

    /// <summary>Reads and validates; error texts name <paramref name="channelIndex"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, int channelIndex, out EndPacket value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channelIndex, "end packet", source.Length, Size);
            return false;
        }

        ulong sent = BinaryPrimitives.ReadUInt64LittleEndian(source);
        ulong reserved = BinaryPrimitives.ReadUInt64LittleEndian(source[8..]);
        if (reserved != 0)
        {
            error = WireError.At(channelIndex, $"end packet reserved bytes 0x{reserved:X16} set, expected 0");
            return false;
        }

        value = new EndPacket(sent);
        error = string.Empty;
        return true;
    }

    /// <summary>Cross-check at End: the count the sender claims must equal what this channel received.</summary>
    public bool Matches(ulong packetsReceived, int channelIndex, out string error)
    {
        if (PacketsSent != packetsReceived)
        {
            error = WireError.At(channelIndex, $"end packet claims {PacketsSent} packets sent, received {packetsReceived}");
            return false;
        }

        error = string.Empty;
        return true;
    }
}
