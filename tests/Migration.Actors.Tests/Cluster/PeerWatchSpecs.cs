using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Node;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Cluster;

/// <summary>
/// PeerWatch, which ends a migration when its other side is gone (docs/architecture.md, "Ownership rules", Detection):
/// the peer's migration actor stopping (its node alive) and the peer's node downed by the cluster each give the parent
/// exactly one PeerLost that says which, also when the peer's node joined only after the watch began (setup).
/// </summary>
public sealed class PeerWatchSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly Config NodeConfig = ConfigurationFactory.ParseString("""
        akka.remote.dot-netty.tcp.port = 0
        akka.cluster.roles = [hypervisor]
        akka.actor.serialize-messages = on
        akka.loglevel = WARNING
        # A loaded machine's pause must not look like a hang to the resolver (only the spec downs the peer).
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 10s
        """).WithFallback(NodeHost.ReferenceConfig());

    private readonly Akka.Cluster.Cluster _cluster;
    private ActorSystem? _peer;

    public PeerWatchSpecs(ITestOutputHelper output)
        : base(NodeConfig, "peerwatch-spec", output)
    {
        _cluster = Akka.Cluster.Cluster.Get(Sys);
        _cluster.Join(_cluster.SelfAddress);
        AwaitCondition(() => _cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up, Patience);
    }

    [Fact]
    public void The_peers_migration_actor_stopping_is_reported_once_as_not_a_node_removal()
    {
        // The peer's node is this node (as in single-node specs): only DeathWatch applies, no membership to follow.
        var peer = Sys.ActorOf(Props.Create(() => new Idle()), "incoming-peer");
        ChildActorOf(PeerWatch.Props(peer, "destination"));
        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings.Ref, typeof(Warning));

        Sys.Stop(peer);

        var lost = ExpectMsg<PeerLost>(Patience);
        Assert.False(lost.NodeRemoved);
        Assert.Contains("the destination's migration actor", lost.Why);
        Assert.Contains("stopped", lost.Why);
        ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        // A peer actor also stops when its side ended normally (after every completed migration): no warning from the
        // watch (it logs before it tells the parent, so a warning would be here by now); the parent logs a real loss.
        var logged = warnings.ReceiveWhile(TimeSpan.FromMilliseconds(300), o => (Warning)o);
        Assert.DoesNotContain(logged, w => w.Message.ToString()!.Contains("migration actor", StringComparison.Ordinal));
    }

    [Fact]
    public void A_peer_node_that_joins_after_the_watch_began_and_is_then_downed_is_reported_once_as_removed()
    {
        // Setup: the watch starts before the peer's node is a member in this node's view.
        _peer = ActorSystem.Create(Sys.Name, NodeConfig);
        var peerAddress = Akka.Cluster.Cluster.Get(_peer).SelfAddress;
        ChildActorOf(PeerWatch.Props(peerAddress, "source"));
        var peerActor = _peer.ActorOf(Props.Create(() => new Idle()), "coordinator");

        Akka.Cluster.Cluster.Get(_peer).Join(_cluster.SelfAddress);
        AwaitCondition(() => _cluster.State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == 2, Patience);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // a member that is Up is not lost

        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings.Ref, typeof(Warning));
        _cluster.Down(peerAddress);

        var lost = ExpectMsg<PeerLost>(Patience);
        Assert.True(lost.NodeRemoved);
        // A node removal is always a loss: the watch warns.
        warnings.FishForMessage<Warning>(w => w.Message.ToString()!.Contains($"source node {peerAddress}", StringComparison.Ordinal), Patience);
        Assert.Contains($"source node {peerAddress}", lost.Why);
        Assert.Matches("downed by|removed from", lost.Why);
        ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        Assert.False(peerActor.IsNobody());
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _peer is not null)
        {
            _peer.Terminate().Wait(Patience);
        }

        base.Dispose(disposing);
    }

    private sealed class Idle : ReceiveActor
    {
        public Idle() => ReceiveAny(_ => { });
    }
}
