using System.Buffers.Binary;

namespace Migration.Devices.Device.Vfio;

/// <summary>
/// Header of one record of the simulated VFIO device's state stream, followed by <see cref="Length"/> bytes
/// of region content. Wire layout, 16 bytes, all little-endian:
/// <c>u32 magic 0x52474E31 ("RGN1"), u32 regionIndex, u32 version, u32 length</c>.
/// </summary>
public readonly record struct RegionRecordHeader(uint RegionIndex, uint Version, uint Length)
{
    public const int Size = 16;
    public const uint Magic = 0x52474E31;

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"record header needs {Size} bytes, got {destination.Length}", nameof(destination));
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], RegionIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Length);
    }

    /// <summary>Parses a header; checks only the magic (the device checks index and length against its layout).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out RegionRecordHeader header, out string error)
    {
        header = default;
        if (source.Length < Size)
        {
            error = $"record header needs {Size} bytes, got {source.Length}";
            return false;
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic != Magic)
        {
            error = $"bad record magic 0x{magic:X8}, expected 0x{Magic:X8}";
            return false;
        }
        header = new RegionRecordHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[12..]));
        error = "";
        return true;
    }
}
