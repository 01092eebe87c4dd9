using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class HandshakeMessageTests
{
    private const string ChallengeGolden = "4D474348 0100 0000 000102030405060708090A0B0C0D0E0F";
    private const string HelloGolden =
        "4D47484C 0100 0300 0800 0000 33221100554477668899AABBCCDDEEFF " +
        "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F";
    private const string AckGolden = "4D474841 0100 0300 00000000";

    private static readonly Guid MigrationId = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
    private static readonly ChannelChallenge ChallengeValue = new(ChallengeNonce.Read(Hex("000102030405060708090A0B0C0D0E0F")));
    private static readonly ChannelHello HelloValue = new(3, 8, MigrationId,
        HelloProof.Read(Hex("202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F")));

    [Fact]
    public void Challenge_golden_bytes_both_directions()
    {
        Assert.Equal(Hex(ChallengeGolden), Write(b => ChallengeValue.WriteTo(b), ChannelChallenge.Size));
        Assert.True(ChannelChallenge.TryRead(Hex(ChallengeGolden), out var value, out var error), error);
        Assert.Equal(ChallengeValue, value);
    }

    [Fact]
    public void Challenge_round_trips_fresh_nonce()
    {
        var challenge = ChannelChallenge.Create();
        Assert.NotEqual(challenge, ChannelChallenge.Create());
        Assert.True(ChannelChallenge.TryRead(Write(b => challenge.WriteTo(b), ChannelChallenge.Size), 0, out var read, out _));
        Assert.Equal(challenge, read);
    }

    [Fact]
    public void Challenge_rejects_truncation_magic_version_reserved()
    {
        byte[] bytes = Hex(ChallengeGolden);
        for (int length = 0; length < ChannelChallenge.Size; length++)
        {
            Assert.False(ChannelChallenge.TryRead(bytes.AsSpan(0, length), 1, out _, out var error));
            Assert.Equal($"channel 1: truncated channel challenge: {length} bytes, expected 24", error);
        }

        Assert.False(ChannelChallenge.TryRead(With(bytes, 0, 0), 1, out _, out var magicError));
        Assert.Equal("channel 1: bad challenge magic 0x48434700, expected 0x4843474D", magicError);
        Assert.False(ChannelChallenge.TryRead(With(bytes, 4, 2), 1, out _, out var versionError));
        Assert.Equal("channel 1: protocol version 2 not supported, expected 1", versionError);
        Assert.False(ChannelChallenge.TryRead(With(bytes, 6, 1), 1, out _, out var reservedError));
        Assert.StartsWith("channel 1: challenge reserved bytes", reservedError);
    }

    [Fact]
    public void Hello_golden_bytes_both_directions()
    {
        Assert.Equal(Hex(HelloGolden), Write(b => HelloValue.WriteTo(b), ChannelHello.Size));
        Assert.True(ChannelHello.TryRead(Hex(HelloGolden), out var value, out var error), error);
        Assert.Equal(HelloValue, value);
    }

    [Fact]
    public void Hello_round_trips()
    {
        var hello = ChannelHello.Create(new byte[32], ChannelChallenge.Create(), Guid.NewGuid(), 63, 64);
        Assert.True(ChannelHello.TryRead(Write(b => hello.WriteTo(b), ChannelHello.Size), out var read, out var error), error);
        Assert.Equal(hello, read);
    }

    [Fact]
    public void Hello_rejects_truncation_and_magic_without_status()
    {
        byte[] bytes = Hex(HelloGolden);
        for (int length = 0; length < ChannelHello.Size; length++)
        {
            Assert.False(ChannelHello.TryRead(bytes.AsSpan(0, length), out _, out HelloStatus status, out var error));
            Assert.Equal($"truncated hello: {length} bytes, expected 60", error);
            Assert.Equal(default, status);
        }

        Assert.False(ChannelHello.TryRead(With(bytes, 3, 0), out _, out HelloStatus magicStatus, out var magicError));
        Assert.Equal("bad hello magic 0x0048474D, expected 0x4C48474D", magicError);
        Assert.Equal(default, magicStatus);
    }

    [Fact]
    public void Hello_carries_the_connection_number_at_offset_10()
    {
        var reconnect = HelloValue with { Connection = 0x0102 };
        var golden = Hex(HelloGolden.Replace("0800 0000 3322", "0800 0201 3322", StringComparison.Ordinal));
        Assert.Equal(golden, Write(b => reconnect.WriteTo(b), ChannelHello.Size));
        Assert.True(ChannelHello.TryRead(golden, out var value, out var error), error);
        Assert.Equal(reconnect, value);
        Assert.Equal((ushort)0x0102, value.Connection);
        // A first connection is 0, byte-identical to the layout from before reconnect (offset 10 was reserved, 0).
        Assert.Equal((ushort)0, HelloValue.Connection);
    }

    [Fact]
    public void Hello_wrong_version_answers_version_mismatch()
    {
        Assert.False(ChannelHello.TryRead(With(Hex(HelloGolden), 4, 2), out _, out HelloStatus status, out var error));
        Assert.Equal(HelloStatus.VersionMismatch, status);
        Assert.Equal("hello: protocol version 2 not supported, expected 1", error);
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(9, 8)]
    [InlineData(0, 0)]
    [InlineData(64, 65)]
    public void Hello_channel_index_not_below_count_is_bad_channel(ushort index, ushort count)
    {
        var hello = HelloValue with { ChannelIndex = index, ChannelCount = count };
        Assert.False(ChannelHello.TryRead(Write(b => hello.WriteTo(b), ChannelHello.Size), out _, out HelloStatus status, out var error));
        Assert.Equal(HelloStatus.BadChannel, status);
        Assert.Equal($"hello: channel index {index} with channel count {count}, expected index < count <= 64", error);
    }

    [Fact]
    public void Ack_golden_bytes_both_directions()
    {
        Assert.Equal(Hex(AckGolden), Write(b => new ChannelHelloAck(HelloStatus.BadProof).WriteTo(b), ChannelHelloAck.Size));
        Assert.True(ChannelHelloAck.TryRead(Hex(AckGolden), out var value, out var error), error);
        Assert.Equal(new ChannelHelloAck(HelloStatus.BadProof), value);
        Assert.False(value.Accepted);
    }

    [Theory]
    [InlineData(HelloStatus.Accepted)]
    [InlineData(HelloStatus.UnknownMigration)]
    [InlineData(HelloStatus.BadChannel)]
    [InlineData(HelloStatus.VersionMismatch)]
    [InlineData(HelloStatus.Duplicate)]
    public void Ack_round_trips(HelloStatus status)
    {
        var bytes = Write(b => new ChannelHelloAck(status).WriteTo(b), ChannelHelloAck.Size);
        Assert.True(ChannelHelloAck.TryRead(bytes, 2, out var read, out _));
        Assert.Equal(status, read.Status);
    }

    [Fact]
    public void Ack_rejects_truncation_magic_version_status_reserved()
    {
        byte[] bytes = Hex(AckGolden);
        for (int length = 0; length < ChannelHelloAck.Size; length++)
        {
            Assert.False(ChannelHelloAck.TryRead(bytes.AsSpan(0, length), 5, out _, out var error));
            Assert.Equal($"channel 5: truncated hello ack: {length} bytes, expected 12", error);
        }

        Assert.False(ChannelHelloAck.TryRead(With(bytes, 0, 0x4E), 5, out _, out var magicError));
        Assert.Equal("channel 5: bad hello ack magic 0x4148474E, expected 0x4148474D", magicError);
        Assert.False(ChannelHelloAck.TryRead(With(bytes, 4, 2), 5, out _, out var versionError));
        Assert.Equal("channel 5: protocol version 2 not supported, expected 1", versionError);
        Assert.False(ChannelHelloAck.TryRead(With(bytes, 6, 0), 5, out _, out var zeroError));
        Assert.Equal("channel 5: unknown hello status 0, expected 1..6", zeroError);
        Assert.False(ChannelHelloAck.TryRead(With(bytes, 6, 7), 5, out _, out var unknownError));
        Assert.Equal("channel 5: unknown hello status 7, expected 1..6", unknownError);
        Assert.False(ChannelHelloAck.TryRead(With(bytes, 8, 1), 5, out _, out var reservedError));
        Assert.StartsWith("channel 5: hello ack reserved bytes", reservedError);
    }
}
