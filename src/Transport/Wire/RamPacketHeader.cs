using System.Buffers.Binary;
using Migration.Transport.Codecs;

namespace Migration.Transport.Wire;

/// <summary>
/// Fixed part of a RAM packet body (24 bytes, little-endian), right after the <see cref="PacketHeader"/>:
/// <code>
/// off size field
///   0    2 blockIndex       index into the migration's RAM block table
///   2    1 codec            CodecId (None=1, Zstd=2, Lz4=3); the negotiated codec, or None (raw pages)
///   3    1 reserved         0
///   4    4 iteration        precopy iteration (1..), stop-copy uses the next number
///   8    4 normalPageCount  pages whose data is in the payload
///  12    4 zeroPageCount    pages the receiver fills with zeros (no data)
///  16    4 payloadLength    codec None: normalPageCount*4096; else compressed size
///  20    4 reserved         0
/// </code>
/// Followed by (normalPageCount + zeroPageCount) u64 page byte offsets within the block (normal ones first,
/// each list strictly ascending, see <see cref="RamPageOffsets"/>), then payloadLength bytes.
/// </summary>
public readonly record struct RamPacketHeader(
    ushort BlockIndex, CodecId Codec, uint Iteration, uint NormalPageCount, uint ZeroPageCount, uint PayloadLength)
{
    public const int Size = 24;

    /// <summary>Normal + zero pages: the number of u64 entries in the offset array.</summary>
    public int PageCount => (int)Math.Min(int.MaxValue, (long)NormalPageCount + ZeroPageCount);

    /// <summary>Bytes of the page-offset array that follows this header.</summary>
    public int OffsetArrayLength => PageCount * sizeof(ulong);

    /// <summary>The bodyLength the enclosing <see cref="PacketHeader"/> must carry.</summary>
    public uint ExpectedBodyLength => BodyLength((int)NormalPageCount, (int)ZeroPageCount, PayloadLength);

    /// <summary>bodyLength of a RAM packet: 24 + 8 * (normal + zero) + payloadLength.</summary>
    public static uint BodyLength(int normalPages, int zeroPages, uint payloadLength) =>
        checked((uint)(Size + ((long)normalPages + zeroPages) * sizeof(ulong) + payloadLength));

    /// <summary>
    /// Upper bound of a compressed (Zstd or Lz4) payload for <paramref name="normalPages"/> pages:
    /// raw + raw/128 + 128 with raw = normalPages * 4096. It covers both worst cases
    /// (ZSTD_COMPRESSBOUND = raw + raw/256 + at most 64; LZ4_COMPRESSBOUND = raw + raw/255 + 16).
    /// An uncompressed payload is exactly raw.
    /// </summary>
    public static long MaxRamPayload(int normalPages)
    {
        long raw = (long)normalPages * WireConstants.PageSize;
        return raw + (raw >> 7) + 128;
    }

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt16LittleEndian(destination, BlockIndex);
        destination[2] = (byte)Codec;
        destination[3] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Iteration);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], NormalPageCount);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], ZeroPageCount);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], PayloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], 0);
    }

    /// <summary>Reads and validates against the hard limits only; error texts carry no channel prefix.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out RamPacketHeader value, out string error) =>
        TryReadCore(source, WireError.NoChannel, WireConstants.MaxPagesPerPacket, out value, out error);

    /// <summary>
    /// Reads and validates against the migration: block index known, codec == negotiated or None (raw pages), page count within the
    /// negotiated packet capacity, payload length consistent, and <paramref name="bodyLength"/> (from the
    /// <see cref="PacketHeader"/>) == 24 + 8 * pages + payloadLength.
    /// </summary>
    public static bool TryRead(
        ReadOnlySpan<byte> source, in ReceiveContext context, uint bodyLength, out RamPacketHeader value, out string error)
    {
        int channel = context.ChannelIndex;
        ReceiveLimits limits = context.Limits;
        if (!TryReadCore(source, channel, limits.MaxPagesPerPacket, out value, out error))
        {
            return false;
        }

        RamPacketHeader h = value;
        value = default;
        if (h.BlockIndex >= limits.BlockPageCounts.Length)
        {
            error = WireError.At(channel, $"unknown RAM block index {h.BlockIndex} (migration has {limits.BlockPageCounts.Length} blocks)");
            return false;
        }

        if (h.Codec != limits.Codec && h.Codec != CodecId.None)
        {
            error = WireError.At(channel, $"RAM packet codec {h.Codec} differs from negotiated codec {limits.Codec} (or None for raw pages)");
            return false;
        }

        if (bodyLength != h.ExpectedBodyLength)
        {
            error = WireError.At(channel,
                $"RAM packet body length {bodyLength} inconsistent with header: expected {h.ExpectedBodyLength} " +
                $"(24 + 8 * {h.PageCount} pages + payload {h.PayloadLength})");
            return false;
        }

        value = h;
        return true;
    }

    private static bool TryReadCore(
        ReadOnlySpan<byte> source, int channel, int maxPages, out RamPacketHeader value, out string error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(channel, "RAM packet header", source.Length, Size);
            return false;
        }

        ushort block = BinaryPrimitives.ReadUInt16LittleEndian(source);
        var codec = (CodecId)source[2];
        uint iteration = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        uint normal = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        uint zero = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]);
        uint payload = BinaryPrimitives.ReadUInt32LittleEndian(source[16..]);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(source[20..]);

        if (source[3] != 0 || reserved != 0)
        {
            error = WireError.At(channel, $"RAM packet reserved bytes set (0x{source[3]:X2}, 0x{reserved:X8}), expected 0");
            return false;
        }

        if (codec is not (CodecId.None or CodecId.Zstd or CodecId.Lz4))
        {
            error = WireError.At(channel, $"unknown RAM codec {(byte)codec}, expected 1..3 (None, Zstd, Lz4)");
            return false;
        }

        if (iteration == 0)
        {
            error = WireError.At(channel, "RAM packet iteration 0, expected 1 or more");
            return false;
        }

        long pages = (long)normal + zero;
        if (pages == 0)
        {
            error = WireError.At(channel, "RAM packet with 0 pages, expected at least 1");
            return false;
        }

        if (pages > maxPages)
        {
            error = WireError.At(channel, $"{pages} pages exceeds packet capacity {maxPages}");
            return false;
        }

        if (!PayloadConsistent(codec, (int)normal, payload))
        {
            error = WireError.At(channel, $"RAM payload length {payload} for {normal} normal pages with codec {codec}, expected {ExpectedPayload(codec, (int)normal)}");
            return false;
        }

        value = new RamPacketHeader(block, codec, iteration, normal, zero, payload);
        error = string.Empty;
        return true;
    }

    // Runs once per received packet: no allocation on the accepting path (the text below is built only to reject).
    private static bool PayloadConsistent(CodecId codec, int normal, uint payload) =>
        codec == CodecId.None || normal == 0
            ? payload == (long)normal * WireConstants.PageSize
            : payload >= 1 && payload <= MaxRamPayload(normal);

    private static string ExpectedPayload(CodecId codec, int normal) =>
        codec == CodecId.None || normal == 0
            ? ((long)normal * WireConstants.PageSize).ToString(System.Globalization.CultureInfo.InvariantCulture)
            : $"1..{MaxRamPayload(normal)}";
}
