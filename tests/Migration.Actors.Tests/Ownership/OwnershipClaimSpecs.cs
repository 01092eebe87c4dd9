using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Node;
using Migration.Actors.Ownership;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Ownership;

/// <summary>
/// The majority-confirmed ownership record on a one-node cluster (a majority of one): each claim kind's decision, that
/// epochs only grow, that a stale claim is refused, and that a take-back outranks a destination's concurrent claim.
/// </summary>
public sealed class OwnershipClaimSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string Destination = "akka.tcp://mig@127.0.0.1:1";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
    private readonly string _self;

    public OwnershipClaimSpecs(ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString("""
            akka.remote.dot-netty.tcp.port = 0
            akka.cluster.roles = [hypervisor]
            akka.actor.serialize-messages = on
            akka.loglevel = WARNING
            """).WithFallback(NodeHost.ReferenceConfig()), "ownership-spec", output)
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        AwaitCondition(() => cluster.State.Members.Any(m => m.Status == Akka.Cluster.MemberStatus.Up), Patience);
        _self = cluster.SelfAddress.ToString();
    }

    private ClaimResult Claim(string vm, ClaimKind kind, GuestEpoch expected, string claimant)
    {
        ChildActorOf(OwnershipClaim.Props(vm, kind, expected, claimant, TimeSpan.FromSeconds(3)));
        var r = ExpectMsg<ClaimResult>(Patience);
        Assert.Equal(vm, r.VmId);
        Assert.Equal(kind, r.Kind);
        return r;
    }

    [Fact]
    public void A_guest_without_an_entry_reads_as_none_and_a_creation_records_an_epoch()
    {
        var read = Claim("vm-new", ClaimKind.Read, GuestEpoch.None, _self);
        Assert.Equal(ClaimOutcome.Won, read.Outcome);
        Assert.True(read.Current.IsNone);

        var created = Claim("vm-new", ClaimKind.TakeBack, GuestEpoch.None, _self);
        Assert.Equal(ClaimOutcome.Won, created.Outcome);
        Assert.Equal(new GuestEpoch(2, _self), created.Current);
        Assert.Equal(created.Current, Claim("vm-new", ClaimKind.Read, GuestEpoch.None, _self).Current);
    }

    [Fact]
    public void A_destination_wins_the_next_epoch_only_while_the_entry_is_unchanged_since_the_migration_started()
    {
        var start = Claim("vm-a", ClaimKind.TakeBack, GuestEpoch.None, _self).Current;

        var resumed = Claim("vm-a", ClaimKind.IfUnchanged, start, Destination);
        Assert.Equal(ClaimOutcome.Won, resumed.Outcome);
        Assert.Equal(new GuestEpoch(start.Epoch + 1, Destination), resumed.Current);

        // The same claim again (a retry after a timeout) confirms the destination's own epoch, it does not bump it.
        Assert.Equal(resumed.Current, Claim("vm-a", ClaimKind.IfUnchanged, start, Destination).Current);

        // A second destination that started from the same, now stale, entry is refused and told what the record says.
        var other = Claim("vm-a", ClaimKind.IfUnchanged, start, "akka.tcp://mig@127.0.0.1:2");
        Assert.Equal(ClaimOutcome.Refused, other.Outcome);
        Assert.Equal(resumed.Current, other.Current);
    }

    [Fact]
    public void A_take_back_outranks_a_destination_claim_and_refuses_it_afterwards()
    {
        var start = Claim("vm-b", ClaimKind.TakeBack, GuestEpoch.None, _self).Current;

        // The destination was removed before it confirmed: the source takes the guest back at start + 2 at least, so a
        // destination write of start + 1 that reached some replica but no majority loses every merge.
        var back = Claim("vm-b", ClaimKind.TakeBack, start, _self);
        Assert.Equal(ClaimOutcome.Won, back.Outcome);
        Assert.Equal(_self, back.Current.Owner);
        Assert.True(back.Current.Epoch >= start.Epoch + 2, back.Current.ToString());

        var late = Claim("vm-b", ClaimKind.IfUnchanged, start, Destination);
        Assert.Equal(ClaimOutcome.Refused, late.Outcome);
        Assert.Equal(back.Current, late.Current);
    }

    [Fact]
    public void A_take_back_without_the_start_epoch_writes_two_above_the_entry_it_read_even_when_that_names_itself()
    {
        // The coordinator takes back with no start epoch. Its read may miss a destination's claim of read + 1 that reached
        // some replica but no majority: only read + 2 outranks that claim in every merge.
        var start = Claim("vm-c", ClaimKind.TakeBack, GuestEpoch.None, _self).Current;
        var back = Claim("vm-c", ClaimKind.TakeBack, GuestEpoch.None, _self);
        Assert.Equal(ClaimOutcome.Won, back.Outcome);
        Assert.Equal(new GuestEpoch(start.Epoch + 2, _self), back.Current);
        Assert.Equal(ClaimOutcome.Refused, Claim("vm-c", ClaimKind.IfUnchanged, start, Destination).Outcome);
    }

    [Theory]
    [InlineData("")]
    [InlineData("3")]
    [InlineData("0 akka.tcp://mig@127.0.0.1:1")]
    [InlineData("-1 akka.tcp://mig@127.0.0.1:1")]
    [InlineData("x akka.tcp://mig@127.0.0.1:1")]
    [InlineData("3 node-b")]
    public void A_malformed_record_value_is_rejected_with_what_arrived(string text)
    {
        Assert.False(GuestEpoch.TryParse(text, out var e, out var error));
        Assert.True(e.IsNone);
        Assert.Contains($"'{text}'", error);
    }

    [Fact]
    public void A_record_value_round_trips()
    {
        var e = new GuestEpoch(7, Destination);
        Assert.Equal("7 akka.tcp://mig@127.0.0.1:1", e.Format());
        Assert.True(GuestEpoch.TryParse(e.Format(), out var back, out _));
        Assert.Equal(e, back);
    }
}
