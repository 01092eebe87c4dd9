using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// The 16-byte header in front of every data packet (little-endian):
/// <code>
/// off size field
///   0    4 magic       0x4B50474D ("MGPK")
///   4    1 version     1
///   5    1 type        PacketType
///   6    2 flags       PacketFlags, all bits reserved in v1 (must be 0)
///   8    4 bodyLength  bytes following this header
///  12    4 checksum    low 32 bits of XxHash3-64 (seed 0) over the packet's checked bytes (PacketChecksum)
/// </code>
/// The header itself is not covered by the checksum: each of its fields is validated on read, and
/// bodyLength is cross-checked against the type's own header.
/// </summary>
public readonly record struct PacketHeader(PacketType Type, PacketFlags Flags, uint BodyLength, uint Checksum)
{
    public const int Size = 16;

    /// <summary>Body of a RAM packet must hold at least its header and one page offset.</summary>
    public const uint MinRamBody = RamPacketHeader.Size + sizeof(ulong);

    /// <summary>Hard per-type maxima of bodyLength, independent of negotiation.</summary>
    public static readonly uint MaxRamBody = RamPacketHeader.BodyLength(
        WireConstants.MaxPagesPerPacket, 0, (uint)RamPacketHeader.MaxRamPayload(WireConstants.MaxPagesPerPacket));

    public const uint MaxDeviceBody = DeviceChunkHeader.Size + WireConstants.MaxDeviceChunkBytes;

    /// <summary>Always <see cref="WireConstants.PacketMagic"/> for a constructed header.</summary>
    public uint Magic => WireConstants.PacketMagic;

    /// <summary>Always <see cref="WireConstants.CurrentVersion"/> for a constructed header.</summary>
    public byte Version => WireConstants.CurrentVersion;

    /// <summary>Total bytes on the wire: header + body.</summary>
    public long TotalLength => Size + (long)BodyLength;

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, WireConstants.PacketMagic);
        destination[4] = WireConstants.CurrentVersion;
        destination[5] = (byte)Type;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], (ushort)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], BodyLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Checksum);
    }

    /// <summary>Reads and validates against the hard limits; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out PacketHeader value, out string error) =>
        TryRead(source, WireError.NoChannel, PacketHeader.MaxRamBody, MaxDeviceBody, out value, out error);

    /// <summary>Reads and validates against the migration's negotiated limits (tighter body maxima).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, in ReceiveContext context, out PacketHeader value, out string error) =>
        TryRead(source, context.ChannelIndex, context.Limits.MaxRamBody, context.Limits.MaxDeviceBody, out value, out error);

    private static bool TryRead(
        ReadOnlySpan<byte> source, int channel, uint maxRamBody, uint maxDeviceBody, out PacketHeader value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channel, "packet header", source.Length, Size);
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic != WireConstants.PacketMagic)
        {
            error = WireError.Magic(channel, "packet", magic, WireConstants.PacketMagic);
            return false;
        }

        if (source[4] != WireConstants.CurrentVersion)
        {
            error = WireError.Version(channel, source[4]);
            return false;
        }

        var type = (PacketType)source[5];
        var flags = (PacketFlags)BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        uint bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        uint checksum = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]);

        if (flags != PacketFlags.None)
        {
            error = WireError.At(channel, $"reserved packet flags 0x{(ushort)flags:X4} set, expected 0x0000");
            return false;
        }

        (uint min, uint max, string name) = type switch
        {
            PacketType.Ram => (MinRamBody, maxRamBody, "RAM"),
            PacketType.DeviceState => ((uint)DeviceChunkHeader.Size, maxDeviceBody, "device-state"),
            PacketType.Sync => ((uint)SyncPacket.Size, (uint)SyncPacket.Size, "sync"),
            PacketType.End => ((uint)EndPacket.Size, (uint)EndPacket.Size, "end"),
            _ => (0u, 0u, ""),
        };

        if (max == 0)
        {
            error = WireError.At(channel, $"unknown packet type {(byte)type}, expected 1..4 (Ram, DeviceState, Sync, End)");
            return false;
        }

        if (bodyLength > max)
        {
            error = WireError.At(channel, $"{name} packet body length {bodyLength} exceeds maximum {max}");
            return false;
        }

        if (bodyLength < min)
        {
            error = WireError.At(channel, $"{name} packet body length {bodyLength} below minimum {min}");
            return false;
        }

        value = new PacketHeader(type, flags, bodyLength, checksum);
        error = string.Empty;
        return true;
    }
}
