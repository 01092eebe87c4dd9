using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class RamPacketHeaderTests
{
    private const string Golden = "0100 02 00 03000000 05000000 02000000 34120000 00000000";
    private static readonly RamPacketHeader GoldenValue = new(1, CodecId.Zstd, 3, 5, 2, 0x1234);

    private static byte[] Bytes(RamPacketHeader header) => Write(b => header.WriteTo(b), RamPacketHeader.Size);

    [Fact]
    public void WriteTo_produces_golden_bytes() => Assert.Equal(Hex(Golden), Bytes(GoldenValue));

    [Fact]
    public void TryRead_of_golden_bytes_gives_value()
    {
        Assert.True(RamPacketHeader.TryRead(Hex(Golden), out var value, out var error), error);
        Assert.Equal(GoldenValue, value);
        Assert.Equal(7, value.PageCount);
        Assert.Equal(56, value.OffsetArrayLength);
        Assert.Equal(24u + 56u + 0x1234u, value.ExpectedBodyLength);
    }

    [Fact]
    public void Round_trips_with_context()
    {
        var header = new RamPacketHeader(1, CodecId.None, 9, 3, 4, 3 * 4096);
        Assert.True(RamPacketHeader.TryRead(Bytes(header), Context(1), header.ExpectedBodyLength, out var read, out var error), error);
        Assert.Equal(header, read);
    }

    [Fact]
    public void Every_truncated_length_is_rejected()
    {
        byte[] bytes = Hex(Golden);
        for (int length = 0; length < RamPacketHeader.Size; length++)
        {
            Assert.False(RamPacketHeader.TryRead(bytes.AsSpan(0, length), Context(3, CodecId.Zstd), 0, out _, out var error));
            Assert.Equal($"channel 3: truncated RAM packet header: {length} bytes, expected 24", error);
        }
    }

    [Fact]
    public void Page_count_beyond_packet_capacity_is_rejected()
    {
        var header = new RamPacketHeader(0, CodecId.None, 1, 2000, 0, 2000 * 4096);
        Assert.False(RamPacketHeader.TryRead(Bytes(header), Context(1), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 1: 2000 pages exceeds packet capacity 128", error);

        var mixed = new RamPacketHeader(0, CodecId.None, 1, 1000, 25, 1000 * 4096);
        Assert.False(RamPacketHeader.TryRead(Bytes(mixed), out _, out error));
        Assert.Equal("1025 pages exceeds packet capacity 1024", error);
    }

    [Fact]
    public void Zero_pages_is_rejected()
    {
        Assert.False(RamPacketHeader.TryRead(Bytes(new RamPacketHeader(0, CodecId.None, 1, 0, 0, 0)), Context(2), 24, out _, out var error));
        Assert.Equal("channel 2: RAM packet with 0 pages, expected at least 1", error);
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)4)]
    [InlineData((byte)200)]
    public void Unknown_codec_is_rejected(byte codec)
    {
        Assert.False(RamPacketHeader.TryRead(With(Hex(Golden), 2, codec), Context(4, CodecId.Zstd), 0, out _, out var error));
        Assert.Equal($"channel 4: unknown RAM codec {codec}, expected 1..3 (None, Zstd, Lz4)", error);
    }

    [Fact]
    public void Codec_other_than_negotiated_is_rejected()
    {
        Assert.False(RamPacketHeader.TryRead(Hex(Golden), Context(4, CodecId.Lz4), GoldenValue.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 4: RAM packet codec Zstd differs from negotiated codec Lz4 (or None for raw pages)", error);
    }

    [Fact]
    public void Raw_packet_under_a_negotiated_codec_is_accepted_with_exactly_the_raw_length()
    {
        var raw = new RamPacketHeader(1, CodecId.None, 3, 5, 2, 5 * 4096);
        Assert.True(RamPacketHeader.TryRead(Bytes(raw), Context(4, CodecId.Zstd), raw.ExpectedBodyLength, out var read, out var error), error);
        Assert.Equal(raw, read);

        var shortRaw = raw with { PayloadLength = 0x1234 };
        Assert.False(RamPacketHeader.TryRead(Bytes(shortRaw), Context(4, CodecId.Lz4), shortRaw.ExpectedBodyLength, out _, out error));
        Assert.Equal("channel 4: RAM payload length 4660 for 5 normal pages with codec None, expected 20480", error);
    }

    [Fact]
    public void Compressed_packet_on_a_channel_without_codec_is_rejected()
    {
        Assert.False(RamPacketHeader.TryRead(Hex(Golden), Context(4, CodecId.None), GoldenValue.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 4: RAM packet codec Zstd differs from negotiated codec None (or None for raw pages)", error);
    }

    [Fact]
    public void Unknown_block_is_rejected()
    {
        var header = GoldenValue with { BlockIndex = 2 };
        Assert.False(RamPacketHeader.TryRead(Bytes(header), Context(0, CodecId.Zstd), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 0: unknown RAM block index 2 (migration has 2 blocks)", error);
    }

    [Theory]
    [InlineData(CodecId.None, 3u, 3u * 4096 - 1, "channel 1: RAM payload length 12287 for 3 normal pages with codec None, expected 12288")]
    [InlineData(CodecId.Zstd, 3u, 0u, "channel 1: RAM payload length 0 for 3 normal pages with codec Zstd, expected 1..12512")]
    [InlineData(CodecId.Lz4, 3u, 12513u, "channel 1: RAM payload length 12513 for 3 normal pages with codec Lz4, expected 1..12512")]
    [InlineData(CodecId.Zstd, 0u, 5u, "channel 1: RAM payload length 5 for 0 normal pages with codec Zstd, expected 0")]
    public void Inconsistent_payload_length_is_rejected(CodecId codec, uint normal, uint payload, string expected)
    {
        var header = new RamPacketHeader(0, codec, 1, normal, 1, payload);
        Assert.False(RamPacketHeader.TryRead(Bytes(header), Context(1, codec), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Max_ram_payload_covers_zstd_and_lz4_worst_cases()
    {
        foreach (int pages in new[] { 1, 2, 31, 32, 33, 128, 1024 })
        {
            long raw = pages * 4096L;
            long zstdBound = raw + (raw >> 8) + (raw < 128 * 1024 ? (128 * 1024 - raw) >> 11 : 0);
            long lz4Bound = raw + (raw / 255) + 16;
            Assert.True(RamPacketHeader.MaxRamPayload(pages) >= Math.Max(zstdBound, lz4Bound));
        }
    }

    [Fact]
    public void Body_length_inconsistent_with_header_is_rejected()
    {
        Assert.False(RamPacketHeader.TryRead(Hex(Golden), Context(7, CodecId.Zstd), 100, out _, out var error));
        Assert.Equal("channel 7: RAM packet body length 100 inconsistent with header: expected 4740 (24 + 8 * 7 pages + payload 4660)", error);
    }

    [Theory]
    [InlineData(3, 0x01)]
    [InlineData(20, 0x01)]
    [InlineData(23, 0x80)]
    public void Reserved_bytes_set_are_rejected(int index, byte value)
    {
        Assert.False(RamPacketHeader.TryRead(With(Hex(Golden), index, value), Context(2, CodecId.Zstd), 0, out _, out var error));
        Assert.StartsWith("channel 2: RAM packet reserved bytes set", error);
    }

    [Fact]
    public void Iteration_zero_is_rejected()
    {
        Assert.False(RamPacketHeader.TryRead(Bytes(GoldenValue with { Iteration = 0 }), out _, out var error));
        Assert.Equal("RAM packet iteration 0, expected 1 or more", error);
    }
}
