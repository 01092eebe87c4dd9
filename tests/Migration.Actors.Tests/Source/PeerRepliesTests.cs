using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Source;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>The source checks the destination's replies like wire input before using them.</summary>
public sealed class PeerRepliesTests
{
    private static readonly Guid Id = Guid.NewGuid();
    private static readonly PrepareAck Good = new(Id, "127.0.0.1", 4000, new byte[32], 1 << 20, ActorRefs.Nobody);

    [Fact]
    public void A_well_formed_acknowledgement_passes() => Assert.Null(PeerReplies.PrepareAckProblem(Good, Id));

    public static TheoryData<string, PrepareAck> BadAcks => new()
    {
        { "for migration", Good with { MigrationId = Guid.NewGuid() } },
        { "channel host 'evil.example'", Good with { Host = "evil.example" } },
        { "incoming actor missing", Good with { Incoming = null! } },
        { "channel port 0; expected 1..65535", Good with { Port = 0 } },
        { "channel port 70000", Good with { Port = 70000 } },
        { "token of 3 bytes; expected 32", Good with { Token = new byte[3] } },
        { "token of 0 bytes", Good with { Token = null! } },
    };

    [Theory]
    [MemberData(nameof(BadAcks))]
    public void A_malformed_acknowledgement_is_refused_saying_what_arrived(string expected, PrepareAck ack) =>
        Assert.Contains(expected, PeerReplies.PrepareAckProblem(ack, Id));

    [Fact]
    public void A_resume_without_its_receipts_is_refused()
    {
        Assert.Null(PeerReplies.ChannelResumeProblem(new ChannelResume(Id, 0, 1, 1, [new DeviceReceipt(0, [])]), 1));
        Assert.Contains("expected 1 receipts", PeerReplies.ChannelResumeProblem(new ChannelResume(Id, 0, 1, 1, null!), 1));
        Assert.Contains("some missing", PeerReplies.ChannelResumeProblem(new ChannelResume(Id, 0, 1, 1, [new DeviceReceipt(0, null!)]), 1));
        Assert.Contains("expected 2 receipts", PeerReplies.ChannelResumeProblem(new ChannelResume(Id, 0, 1, 1, [new DeviceReceipt(-1, [])]), 2));
    }
}
