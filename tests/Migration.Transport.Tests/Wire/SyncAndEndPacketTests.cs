using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class SyncAndEndPacketTests
{
    [Fact]
    public void Sync_golden_bytes_both_directions()
    {
        Assert.Equal(Hex("07000000 00000000"), Write(b => new SyncPacket(7).WriteTo(b), SyncPacket.Size));
        Assert.True(SyncPacket.TryRead(Hex("07000000 00000000"), 0, out var value, out var error), error);
        Assert.Equal(new SyncPacket(7), value);
    }

    [Fact]
    public void Sync_round_trips()
    {
        var bytes = Write(b => new SyncPacket(uint.MaxValue).WriteTo(b), SyncPacket.Size);
        Assert.True(SyncPacket.TryRead(bytes, out var value, out _));
        Assert.Equal(uint.MaxValue, value.Iteration);
    }

    [Fact]
    public void Sync_rejects_truncation_reserved_and_iteration_zero()
    {
        byte[] bytes = Hex("07000000 00000000");
        for (int length = 0; length < SyncPacket.Size; length++)
        {
            Assert.False(SyncPacket.TryRead(bytes.AsSpan(0, length), 3, out _, out var error));
            Assert.Equal($"channel 3: truncated sync packet: {length} bytes, expected 8", error);
        }

        Assert.False(SyncPacket.TryRead(With(bytes, 7, 1), 3, out _, out var reservedError));
        Assert.Equal("channel 3: sync packet reserved bytes 0x01000000 set, expected 0", reservedError);
        Assert.False(SyncPacket.TryRead(new byte[8], 3, out _, out var zeroError));
        Assert.Equal("channel 3: sync packet iteration 0, expected 1 or more", zeroError);
    }

    [Fact]
    public void End_golden_bytes_both_directions()
    {
        const string golden = "8877665544332211 0000000000000000";
        Assert.Equal(Hex(golden), Write(b => new EndPacket(0x1122334455667788).WriteTo(b), EndPacket.Size));
        Assert.True(EndPacket.TryRead(Hex(golden), 0, out var value, out var error), error);
        Assert.Equal(new EndPacket(0x1122334455667788), value);
    }

    [Fact]
    public void End_round_trips_and_cross_checks_count()
    {
        var bytes = Write(b => new EndPacket(12345).WriteTo(b), EndPacket.Size);
        Assert.True(EndPacket.TryRead(bytes, out var value, out _));
        Assert.True(value.Matches(12345, 1, out _));
        Assert.False(value.Matches(12344, 1, out var error));
        Assert.Equal("channel 1: end packet claims 12345 packets sent, received 12344", error);
    }

    [Fact]
    public void End_rejects_truncation_and_reserved()
    {
        byte[] bytes = Hex("8877665544332211 0000000000000000");
        for (int length = 0; length < EndPacket.Size; length++)
        {
            Assert.False(EndPacket.TryRead(bytes.AsSpan(0, length), 2, out _, out var error));
            Assert.Equal($"channel 2: truncated end packet: {length} bytes, expected 16", error);
        }

        Assert.False(EndPacket.TryRead(With(bytes, 8, 1), 2, out _, out var reservedError));
        Assert.Equal("channel 2: end packet reserved bytes 0x0000000000000001 set, expected 0", reservedError);
    }
}
