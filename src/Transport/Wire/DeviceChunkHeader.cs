using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// Fixed part of a device-state packet body (24 bytes, little-endian), followed by <see cref="Length"/> bytes:
/// <code>
/// off size field
///   0    2 deviceIndex  index into the migration's device table
///   2    1 phase        DevicePhase (Precopy=1, StopCopy=2)
///   3    1 flags        DeviceChunkFlags (Last=1; other bits reserved, must be 0)
///   4    4 instance     device instance id; must match the table
///   8    8 chunkIndex   consecutive per device from 0 across both phases
///  16    4 length       payload bytes; 0 only with Last
///  20    4 reserved     0
/// </code>
/// Device chunks never pass through a RAM codec. Credit and reordering rules are in docs/protocol.md.
/// </summary>
public readonly record struct DeviceChunkHeader(
    ushort DeviceIndex, DevicePhase Phase, DeviceChunkFlags Flags, uint Instance, ulong ChunkIndex, uint Length)
{
    public const int Size = 24;

    /// <summary>True for the device's final chunk.</summary>
    public bool IsLast => (Flags & DeviceChunkFlags.Last) != 0;

    /// <summary>The bodyLength the enclosing <see cref="PacketHeader"/> must carry: 24 + length.</summary>
    public uint ExpectedBodyLength => checked(Size + Length);

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt16LittleEndian(destination, DeviceIndex);
        destination[2] = (byte)Phase;
        destination[3] = (byte)Flags;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Instance);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], ChunkIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], 0);
    }

    /// <summary>Reads and validates against the hard limits only; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DeviceChunkHeader value, out string error) =>
        TryReadCore(source, WireError.NoChannel, WireConstants.MaxDeviceChunkBytes, out value, out error);

    /// <summary>
    /// Reads and validates against the migration: device known, instance matches, length within the negotiated
    /// max chunk size, and <paramref name="bodyLength"/> (from the <see cref="PacketHeader"/>) == 24 + length.
    /// Credit and chunk-index order are checked by the reorder gate, not here.
    /// </summary>
    public static bool TryRead(
        ReadOnlySpan<byte> source, in ReceiveContext context, uint bodyLength, out DeviceChunkHeader value, out string error)
    {
        int channel = context.ChannelIndex;
        ReceiveLimits limits = context.Limits;
        if (!TryReadCore(source, channel, limits.MaxDeviceChunkBytes, out value, out error))
        {
            return false;
        }

        DeviceChunkHeader h = value;
        value = default;
        ReadOnlySpan<DeviceSlot> devices = limits.Devices;
        if (h.DeviceIndex >= devices.Length || !devices[h.DeviceIndex].Known)
        {
            error = WireError.At(channel, $"unknown device index {h.DeviceIndex} (migration has {devices.Length} devices)");
            return false;
        }

        uint expectedInstance = devices[h.DeviceIndex].Instance;
        if (h.Instance != expectedInstance)
        {
            error = WireError.At(channel, $"device {h.DeviceIndex} chunk for instance {h.Instance}, expected instance {expectedInstance}");
            return false;
        }

        if (bodyLength != (long)Size + h.Length)
        {
            error = WireError.At(channel,
                $"device-state packet body length {bodyLength} inconsistent with chunk length {h.Length}: expected {(long)Size + h.Length}");
            return false;
        }

        value = h;
        return true;
    }

    private static bool TryReadCore(
        ReadOnlySpan<byte> source, int channel, int maxChunk, out DeviceChunkHeader value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channel, "device chunk header", source.Length, Size);
            return false;
        }

        ushort device = BinaryPrimitives.ReadUInt16LittleEndian(source);
        var phase = (DevicePhase)source[2];
        var flags = (DeviceChunkFlags)source[3];
        uint instance = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        ulong chunkIndex = BinaryPrimitives.ReadUInt64LittleEndian(source[8..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(source[16..]);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(source[20..]);

        if (reserved != 0)
        {
            error = WireError.At(channel, $"device chunk reserved bytes 0x{reserved:X8} set, expected 0");
            return false;
        }

        if (phase is not (DevicePhase.Precopy or DevicePhase.StopCopy))
        {
            error = WireError.At(channel, $"device {device} chunk {chunkIndex}: bad phase {(byte)phase}, expected 1 (Precopy) or 2 (StopCopy)");
            return false;
        }

        if ((flags & ~DeviceChunkFlags.Last) != 0)
        {
            error = WireError.At(channel, $"device {device} chunk {chunkIndex}: reserved flag bits 0x{(byte)flags:X2} set, only 0x01 (Last) defined");
            return false;
        }

        if (length == 0 && (flags & DeviceChunkFlags.Last) == 0)
        {
            error = WireError.At(channel, $"device {device} chunk {chunkIndex}: empty chunk without the Last flag");
            return false;
        }

        if (length > (uint)maxChunk)
        {
            error = WireError.At(channel, $"device chunk length {length} exceeds max chunk size {maxChunk}");
            return false;
        }

        value = new DeviceChunkHeader(device, phase, flags, instance, chunkIndex, length);
        error = string.Empty;
        return true;
    }
}
