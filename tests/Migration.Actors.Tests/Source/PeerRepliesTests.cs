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

    public static TheoryData<string, DeviceCredit> BadCredits => new()
    {
        { "credit for device 2; the guest has 2 devices", new DeviceCredit(Id, 2, 4096, 0, 10, 0) },
        { "credit for device -1", new DeviceCredit(Id, -1, 4096, 0, 10, 0) },
        { "reporting -5 load ticks", new DeviceCredit(Id, 0, 4096, 0, -5, 0) },
        { "and -1 buffered bytes", new DeviceCredit(Id, 1, 4096, 0, 10, -1) },
        { "and 1048577 buffered bytes; expected load ticks in 0..", new DeviceCredit(Id, 1, 4096, 0, 10, (1 << 20) + 1) },
        { "buffered bytes in 0..1048576 (the budget)", new DeviceCredit(Id, 1, 4096, 0, 10, (1 << 20) + 1) },
        // A load time no real load has: summed, such values would overflow the load-rate estimate's tick count.
        { $"reporting {long.MaxValue} load ticks", new DeviceCredit(Id, 0, 4096, 0, long.MaxValue, 0) },
        { $"reporting {PeerReplies.MaxLoadTicksPerCredit + 1} load ticks", new DeviceCredit(Id, 0, 4096, 0, PeerReplies.MaxLoadTicksPerCredit + 1, 0) },
    };

    [Theory]
    [MemberData(nameof(BadCredits))]
    public void A_credit_for_an_unknown_device_or_with_figures_out_of_range_is_refused(string expected, DeviceCredit credit)
    {
        Assert.Null(PeerReplies.CreditProblem(new DeviceCredit(Id, 1, 4096, 0, 10, 1 << 20), 2, 1 << 20));
        Assert.Contains(expected, PeerReplies.CreditProblem(credit, 2, 1 << 20));
    }
}
