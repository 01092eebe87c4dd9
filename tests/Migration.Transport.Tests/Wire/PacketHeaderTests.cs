using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class PacketHeaderTests
{
    private const string Golden = "4D47504B 01 01 0000 28100000 EFBEADDE";
    private static readonly PacketHeader GoldenValue = new(PacketType.Ram, PacketFlags.None, 0x1028, 0xDEADBEEF);

    [Fact]
    public void WriteTo_produces_golden_bytes()
    {
        var bytes = new byte[PacketHeader.Size];
        GoldenValue.WriteTo(bytes);
        Assert.Equal(Hex(Golden), bytes);
    }

    [Fact]
    public void TryRead_of_golden_bytes_gives_value()
    {
        Assert.True(PacketHeader.TryRead(Hex(Golden), out var value, out var error), error);
        Assert.Equal(GoldenValue, value);
        Assert.Equal(WireConstants.PacketMagic, value.Magic);
        Assert.Equal(1, value.Version);
    }

    [Theory]
    [InlineData(PacketType.Ram, 32u)]
    [InlineData(PacketType.DeviceState, 24u + 4096u)]
    [InlineData(PacketType.Sync, 8u)]
    [InlineData(PacketType.End, 16u)]
    public void Round_trips_every_type(PacketType type, uint body)
    {
        var header = new PacketHeader(type, PacketFlags.None, body, 0x01020304);
        var bytes = new byte[PacketHeader.Size];
        header.WriteTo(bytes);
        Assert.True(PacketHeader.TryRead(bytes, Context(1), out var read, out var error), error);
        Assert.Equal(header, read);
    }

    [Fact]
    public void Every_truncated_length_is_rejected()
    {
        byte[] bytes = Hex(Golden);
        for (int length = 0; length < PacketHeader.Size; length++)
        {
            Assert.False(PacketHeader.TryRead(bytes.AsSpan(0, length), Context(4), out _, out var error));
            Assert.Equal($"channel 4: truncated packet header: {length} bytes, expected 16", error);
        }
    }

    [Fact]
    public void Bad_magic_is_rejected()
    {
        byte[] bytes = Hex("78563412 01 01 0000 28100000 EFBEADDE");
        Assert.False(PacketHeader.TryRead(bytes, Context(2), out _, out var error));
        Assert.Equal("channel 2: bad packet magic 0x12345678, expected 0x4B50474D", error);
    }

    [Fact]
    public void Wrong_version_is_rejected()
    {
        Assert.False(PacketHeader.TryRead(With(Hex(Golden), 4, 2), Context(0), out _, out var error));
        Assert.Equal("channel 0: protocol version 2 not supported, expected 1", error);
        Assert.False(PacketHeader.TryRead(With(Hex(Golden), 4, 0), Context(0), out _, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(255)]
    public void Unknown_packet_type_is_rejected(byte type)
    {
        Assert.False(PacketHeader.TryRead(With(Hex(Golden), 5, type), Context(3), out _, out var error));
        Assert.Contains($"channel 3: unknown packet type {type}", error);
    }

    [Theory]
    [InlineData(6, 0x01)]
    [InlineData(7, 0x80)]
    public void Reserved_flag_bits_are_rejected(int index, byte value)
    {
        Assert.False(PacketHeader.TryRead(With(Hex(Golden), index, value), Context(1), out _, out var error));
        Assert.StartsWith("channel 1: reserved packet flags", error);
    }

    [Fact]
    public void Oversize_ram_body_is_rejected_against_hard_and_negotiated_limits()
    {
        var header = new PacketHeader(PacketType.Ram, PacketFlags.None, PacketHeader.MaxRamBody + 1, 0);
        var bytes = new byte[PacketHeader.Size];
        header.WriteTo(bytes);
        Assert.False(PacketHeader.TryRead(bytes, out _, out var error));
        Assert.Equal($"RAM packet body length {PacketHeader.MaxRamBody + 1} exceeds maximum {PacketHeader.MaxRamBody}", error);

        // Negotiated: 128 pages, codec None: 24 + 128*8 + 128*4096.
        uint negotiatedMax = 24 + (128 * 8) + (128 * 4096);
        new PacketHeader(PacketType.Ram, PacketFlags.None, negotiatedMax + 1, 0).WriteTo(bytes);
        Assert.False(PacketHeader.TryRead(bytes, Context(5), out _, out error));
        Assert.Equal($"channel 5: RAM packet body length {negotiatedMax + 1} exceeds maximum {negotiatedMax}", error);
        new PacketHeader(PacketType.Ram, PacketFlags.None, negotiatedMax, 0).WriteTo(bytes);
        Assert.True(PacketHeader.TryRead(bytes, Context(5), out _, out error), error);
    }

    [Theory]
    [InlineData(PacketType.DeviceState, 24u + (1u << 20) + 1, "channel 6: device-state packet body length 1048601 exceeds maximum 1048600")]
    [InlineData(PacketType.Sync, 9u, "channel 6: sync packet body length 9 exceeds maximum 8")]
    [InlineData(PacketType.End, 17u, "channel 6: end packet body length 17 exceeds maximum 16")]
    [InlineData(PacketType.Sync, 7u, "channel 6: sync packet body length 7 below minimum 8")]
    [InlineData(PacketType.Ram, 31u, "channel 6: RAM packet body length 31 below minimum 32")]
    [InlineData(PacketType.DeviceState, 23u, "channel 6: device-state packet body length 23 below minimum 24")]
    public void Body_length_outside_type_bounds_is_rejected(PacketType type, uint body, string expected)
    {
        var bytes = new byte[PacketHeader.Size];
        new PacketHeader(type, PacketFlags.None, body, 0).WriteTo(bytes);
        Assert.False(PacketHeader.TryRead(bytes, Context(6), out _, out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Throwing_helper_carries_channel_and_message()
    {
        var ex = Assert.Throws<ProtocolViolationException>(() =>
        {
            bool ok = PacketHeader.TryRead(Hex("78563412 01 01 0000 28100000 EFBEADDE"), Context(2), out _, out var error);
            ProtocolViolationException.ThrowIfFalse(ok, 2, error);
        });
        Assert.Equal(2, ex.ChannelIndex);
        Assert.Equal("channel 2: bad packet magic 0x12345678, expected 0x4B50474D", ex.Message);
    }
}
