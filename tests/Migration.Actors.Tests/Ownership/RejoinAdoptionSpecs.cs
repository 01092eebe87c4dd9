using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Ownership;

/// <summary>
/// A new incarnation of a node (HypervisorNode over the GuestStore of the previous one) adopts a held guest only as far
/// as the majority ownership record lets it: it runs on once a majority confirmed a new epoch naming this node, it is
/// discarded when the record names another node, and it stays paused, never resumed blind, while this node is not an
/// Up member (a majority read would be a read of itself alone). One-node cluster: a majority of one.
/// </summary>
public sealed class RejoinAdoptionSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string OtherNode = "akka.tcp://mig@127.0.0.1:1";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly Akka.Cluster.Cluster _cluster;
    private readonly GuestStore _store = new();

    public RejoinAdoptionSpecs(ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString("""
            akka.remote.dot-netty.tcp.port = 0
            akka.cluster.roles = [hypervisor]
            akka.actor.serialize-messages = on
            akka.loglevel = WARNING
            migration.memory-pool.max-bytes = 64MiB
            """).WithFallback(NodeHost.ReferenceConfig()), "rejoin-spec", output)
    {
        _cluster = Akka.Cluster.Cluster.Get(Sys);
    }

    private string Self => _cluster.SelfAddress.ToString();

    private void JoinSelf()
    {
        _cluster.Join(_cluster.SelfAddress);
        AwaitCondition(() => _cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up, Patience);
    }

    private static GuestVm NewGuest(string id) =>
        GuestFactory.CreateRunning(new GuestSpec(id, 4L << 20, [new DeviceSpec("net0", DeviceKind.Structured)], 1L << 20));

    private IActorRef StartNode() =>
        Sys.ActorOf(HypervisorNode.Props(MigrationSettings.FromConfig(Sys.Settings.Config), _store), HypervisorNode.Name);

    private GuestInfo[] List(IActorRef node)
    {
        node.Tell(ListGuests.Instance, TestActor);
        return ExpectMsg<GuestList>(Patience).Guests.ToArray();
    }

    /// <summary>Writes the record entry of <paramref name="vm"/> as <paramref name="owner"/> would (a creation-like claim).</summary>
    private GuestEpoch Record(string vm, string owner)
    {
        ChildActorOf(OwnershipClaim.Props(vm, ClaimKind.TakeBack, GuestEpoch.None, owner, TimeSpan.FromSeconds(3)));
        var r = ExpectMsg<ClaimResult>(Patience);
        Assert.Equal(ClaimOutcome.Won, r.Outcome);
        return r.Current;
    }

    private GuestEpoch Read(string vm)
    {
        ChildActorOf(OwnershipClaim.Props(vm, ClaimKind.Read, GuestEpoch.None, Self, TimeSpan.FromSeconds(3)));
        return ExpectMsg<ClaimResult>(Patience).Current;
    }

    [Fact]
    public void A_held_guest_that_the_record_gives_this_node_runs_on_at_a_newer_epoch()
    {
        JoinSelf();
        var start = Record("mine", Self);
        var guest = NewGuest("mine");
        _store.Add(guest);

        var node = StartNode();

        AwaitAssert(() => Assert.Equal("running", Assert.Single(List(node), g => g.VmId == "mine").State), Patience);
        Assert.True(guest.Workload.IsRunning);
        var now = Read("mine");
        Assert.Equal(Self, now.Owner);
        Assert.True(now.Epoch >= start.Epoch + 2, now.ToString());
    }

    [Fact]
    public void A_held_guest_that_the_record_gives_another_node_is_discarded_and_its_memory_freed()
    {
        JoinSelf();
        Record("moved", OtherNode);
        var guest = NewGuest("moved");
        _store.Add(guest);
        _store.MigrationStarted("moved", Guid.NewGuid(), OtherNode);

        var node = StartNode();

        AwaitAssert(() => Assert.Equal(0, _store.Count), Patience);
        Assert.DoesNotContain(List(node), g => g.VmId == "moved");
        Assert.False(guest.Workload.IsRunning);
        Assert.Equal(OtherNode, Read("moved").Owner);
    }

    [Fact]
    public void A_guest_released_to_a_destination_that_never_claimed_it_is_taken_back_and_the_migration_reads_kept_by_source()
    {
        JoinSelf();
        Record("released", Self);
        var id = Guid.NewGuid();
        var guest = NewGuest("released");
        _store.Add(guest);
        _store.MigrationStarted("released", id, OtherNode);
        _store.Released("released", id);
        guest.Workload.Pause();

        var node = StartNode();

        // Never neither: the record still names this node, so the stopped copy is the guest; a destination's later claim
        // of the old epoch + 1 is refused by the take-back at + 2.
        AwaitAssert(() => Assert.Equal("running", Assert.Single(List(node), g => g.VmId == "released").State), Patience);
        Assert.True(guest.Workload.IsRunning);
        node.Tell(new QueryHandover(id), TestActor);
        Assert.Equal(HandoverDecision.KeptBySource, ExpectMsg<HandoverStatus>(Patience).Decision);
    }

    [Fact]
    public void A_held_guest_stays_paused_while_this_node_is_not_an_Up_member_and_runs_once_the_record_confirms_it()
    {
        var guest = NewGuest("waiting");
        _store.Add(guest);

        var node = StartNode();

        // Not a member: no majority read is possible, so the guest is listed unconfirmed and its workload is paused,
        // whatever the time (checked a few times over a second or more; under load the checks only come later).
        for (var i = 0; i < 4; i++)
        {
            var entry = Assert.Single(List(node), g => g.VmId == "waiting");
            Assert.Equal(HypervisorNode.UnconfirmedState, entry.State);
            Assert.False(guest.Workload.IsRunning);
            node.Tell(new StartMigration("waiting", OtherNode, new MigrationSettings(), TestActor), TestActor);
            Assert.Equal("unconfirmed", ExpectMsg<CommandFailed>(Patience).Code);
            ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        }

        JoinSelf();
        AwaitAssert(() => Assert.Equal("running", Assert.Single(List(node), g => g.VmId == "waiting").State), Patience);
        Assert.True(guest.Workload.IsRunning);
        Assert.Equal(Self, Read("waiting").Owner);
    }

    [Fact]
    public void The_reclaim_decision_runs_only_on_a_confirmed_epoch_naming_this_node()
    {
        const string me = "akka.tcp://mig@127.0.0.1:2";
        ClaimResult R(ClaimOutcome o, GuestEpoch e) => new("vm", ClaimKind.Reclaim, o, e, "");
        Assert.Equal(ReclaimVerdict.Run, ReclaimDecision.Decide(R(ClaimOutcome.Won, new GuestEpoch(3, me)), me));
        Assert.Equal(ReclaimVerdict.Discard, ReclaimDecision.Decide(R(ClaimOutcome.Refused, new GuestEpoch(4, OtherNode)), me));
        // Undecided: no majority, or the entry changed between the read and the write.
        Assert.Equal(ReclaimVerdict.AskAgain, ReclaimDecision.Decide(R(ClaimOutcome.NoMajority, new GuestEpoch(3, me)), me));
        Assert.Equal(ReclaimVerdict.AskAgain, ReclaimDecision.Decide(R(ClaimOutcome.Refused, GuestEpoch.None), me));
        Assert.Throws<ArgumentException>(() => ReclaimDecision.Decide(new ClaimResult("vm", ClaimKind.Read, ClaimOutcome.Won, GuestEpoch.None, ""), me));
    }

    [Fact]
    public void A_reclaim_wins_two_epochs_up_when_the_record_names_this_node_or_nothing_and_is_refused_otherwise()
    {
        JoinSelf();
        ClaimResult Reclaim(string vm)
        {
            ChildActorOf(OwnershipClaim.Props(vm, ClaimKind.Reclaim, GuestEpoch.None, Self, TimeSpan.FromSeconds(3)));
            return ExpectMsg<ClaimResult>(Patience);
        }

        var none = Reclaim("r-none");
        Assert.Equal((ClaimOutcome.Won, new GuestEpoch(2, Self)), (none.Outcome, none.Current));
        var again = Reclaim("r-none");
        Assert.Equal((ClaimOutcome.Won, new GuestEpoch(4, Self)), (again.Outcome, again.Current));

        var theirs = Record("r-other", OtherNode);
        var refused = Reclaim("r-other");
        Assert.Equal((ClaimOutcome.Refused, theirs), (refused.Outcome, refused.Current));
        Assert.Equal(theirs, Read("r-other"));
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _store.DisposeAll();
        }
    }
}
