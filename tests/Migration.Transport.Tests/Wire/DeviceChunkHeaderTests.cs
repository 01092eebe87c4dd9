using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class DeviceChunkHeaderTests
{
    private const string Golden = "0100 02 01 0B000000 0807060504030201 00010000 00000000";
    private static readonly DeviceChunkHeader GoldenValue =
        new(1, DevicePhase.StopCopy, DeviceChunkFlags.Last, 11, 0x0102030405060708, 0x100);

    private static byte[] Bytes(DeviceChunkHeader header) => Write(b => header.WriteTo(b), DeviceChunkHeader.Size);

    [Fact]
    public void WriteTo_produces_golden_bytes() => Assert.Equal(Hex(Golden), Bytes(GoldenValue));

    [Fact]
    public void TryRead_of_golden_bytes_gives_value()
    {
        Assert.True(DeviceChunkHeader.TryRead(Hex(Golden), Context(0), 24 + 0x100, out var value, out var error), error);
        Assert.Equal(GoldenValue, value);
        Assert.True(value.IsLast);
        Assert.Equal(24u + 0x100u, value.ExpectedBodyLength);
    }

    [Theory]
    [InlineData(DevicePhase.Precopy, DeviceChunkFlags.None, 1u)]
    [InlineData(DevicePhase.StopCopy, DeviceChunkFlags.None, 1u << 20)]
    [InlineData(DevicePhase.StopCopy, DeviceChunkFlags.Last, 0u)]
    public void Round_trips(DevicePhase phase, DeviceChunkFlags flags, uint length)
    {
        var header = new DeviceChunkHeader(2, phase, flags, 12, 42, length);
        Assert.True(DeviceChunkHeader.TryRead(Bytes(header), Context(1), header.ExpectedBodyLength, out var read, out var error), error);
        Assert.Equal(header, read);
    }

    [Fact]
    public void Every_truncated_length_is_rejected()
    {
        byte[] bytes = Hex(Golden);
        for (int length = 0; length < DeviceChunkHeader.Size; length++)
        {
            Assert.False(DeviceChunkHeader.TryRead(bytes.AsSpan(0, length), Context(2), 0, out _, out var error));
            Assert.Equal($"channel 2: truncated device chunk header: {length} bytes, expected 24", error);
        }
    }

    [Fact]
    public void Oversize_chunk_is_rejected()
    {
        var header = GoldenValue with { Length = 9_000_000 };
        Assert.False(DeviceChunkHeader.TryRead(Bytes(header), Context(3), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 3: device chunk length 9000000 exceeds max chunk size 1048576", error);

        header = GoldenValue with { Length = WireConstants.MaxDeviceChunkBytes + 1u };
        Assert.False(DeviceChunkHeader.TryRead(Bytes(header), out _, out error));
        Assert.Equal("device chunk length 67108865 exceeds max chunk size 67108864", error);
    }

    [Fact]
    public void Unknown_device_is_rejected()
    {
        var header = GoldenValue with { DeviceIndex = 7 };
        Assert.False(DeviceChunkHeader.TryRead(Bytes(header), Context(2), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 2: unknown device index 7 (migration has 3 devices)", error);
    }

    [Fact]
    public void Device_marked_unknown_in_table_is_rejected()
    {
        var limits = new ReceiveLimits(Migration.Transport.Codecs.CodecId.None, 16, 4096, Blocks, [DeviceSlot.Of(1), DeviceSlot.Unknown]);
        var header = new DeviceChunkHeader(1, DevicePhase.Precopy, DeviceChunkFlags.None, 0, 0, 10);
        Assert.False(DeviceChunkHeader.TryRead(Bytes(header), limits.ForChannel(0), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 0: unknown device index 1 (migration has 2 devices)", error);
    }

    [Fact]
    public void Instance_mismatch_is_rejected()
    {
        var header = GoldenValue with { Instance = 99 };
        Assert.False(DeviceChunkHeader.TryRead(Bytes(header), Context(4), header.ExpectedBodyLength, out _, out var error));
        Assert.Equal("channel 4: device 1 chunk for instance 99, expected instance 11", error);
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)3)]
    [InlineData((byte)255)]
    public void Bad_phase_is_rejected(byte phase)
    {
        Assert.False(DeviceChunkHeader.TryRead(With(Hex(Golden), 2, phase), Context(1), 24 + 0x100, out _, out var error));
        Assert.Equal($"channel 1: device 1 chunk 72623859790382856: bad phase {phase}, expected 1 (Precopy) or 2 (StopCopy)", error);
    }

    [Theory]
    [InlineData((byte)0x02)]
    [InlineData((byte)0x81)]
    public void Reserved_flag_bits_are_rejected(byte flags)
    {
        Assert.False(DeviceChunkHeader.TryRead(With(Hex(Golden), 3, flags), Context(1), 24 + 0x100, out _, out var error));
        Assert.Contains($"channel 1: device 1 chunk 72623859790382856: reserved flag bits 0x{flags:X2} set", error);
    }

    [Theory]
    [InlineData(20)]
    [InlineData(23)]
    public void Reserved_bytes_set_are_rejected(int index)
    {
        Assert.False(DeviceChunkHeader.TryRead(With(Hex(Golden), index, 1), Context(1), 24 + 0x100, out _, out var error));
        Assert.StartsWith("channel 1: device chunk reserved bytes", error);
    }

    [Fact]
    public void Empty_chunk_without_last_is_rejected()
    {
        var header = new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 10, 5, 0);
        Assert.False(DeviceChunkHeader.TryRead(Bytes(header), Context(0), 24, out _, out var error));
        Assert.Equal("channel 0: device 0 chunk 5: empty chunk without the Last flag", error);
    }

    [Fact]
    public void Body_length_inconsistent_with_chunk_length_is_rejected()
    {
        Assert.False(DeviceChunkHeader.TryRead(Hex(Golden), Context(5), 24 + 0x101, out _, out var error));
        Assert.Equal("channel 5: device-state packet body length 281 inconsistent with chunk length 256: expected 280", error);
    }
}
