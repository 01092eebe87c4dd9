using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// Body of a Sync packet (8 bytes, little-endian): the sender finished precopy iteration <see cref="Iteration"/>
/// on this channel. The destination's receive channel stops at Sync(k) until every channel reached Sync(k)
/// (barrier), so pages of iteration k never overwrite pages of k+1.
/// <code>
/// off size field
///   0    4 iteration  1..; strictly increasing per channel
///   4    4 reserved   0
/// </code>
/// </summary>
public readonly record struct SyncPacket(uint Iteration)
{
    public const int Size = 8;

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, Iteration);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], 0);
    }

    /// <summary>Reads and validates; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out SyncPacket value, out string error) =>
        TryRead(source, WireError.NoChannel, out value, out error);

    /// <summary>Reads and validates; error texts name <paramref name="channelIndex"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, int channelIndex, out SyncPacket value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channelIndex, "sync packet", source.Length, Size);
            return false;
        }

        uint iteration = BinaryPrimitives.ReadUInt32LittleEndian(source);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        if (reserved != 0)
        {
            error = WireError.At(channelIndex, $"sync packet reserved bytes 0x{reserved:X8} set, expected 0");
            return false;
        }

        if (iteration == 0)
        {
            error = WireError.At(channelIndex, "sync packet iteration 0, expected 1 or more");
            return false;
        }

        value = new SyncPacket(iteration);
        error = string.Empty;
        return true;
    }
}
