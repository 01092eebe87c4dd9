using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Migration.Actors.Cluster;

/// <summary>Parent -> PeerWatch: also watch the peer's migration actor, now known (the source learns it from PrepareAck).</summary>
public sealed record WatchPeerActor(IActorRef Actor) : INoSerializationVerificationNeeded;

/// <summary>PeerWatch -> its parent, once: the peer of the migration is gone (its node left the cluster, or its migration actor stopped).</summary>
public sealed record PeerLost(string Why, bool NodeRemoved) : INoSerializationVerificationNeeded;

/// <summary>
/// Watches the other side of one migration for its parent (the source's coordinator or the destination's incoming
/// migration): the peer's node membership (MemberRemoved, or Down, of the incarnation that was a member when the watch
/// began, so a restarted process at the same address still counts as gone) and the peer's migration actor (DeathWatch).
/// Tells the parent one <see cref="PeerLost"/> at the first of these, within the cluster's own decision (no timeout of
/// its own); nothing if this node's own cluster is shutting down (it then reports every member removed).
/// A child of the actor it serves, so it ends with it. State is touched on its own thread only.
/// </summary>
public sealed class PeerWatch : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Address _peerNode;
    private readonly IActorRef? _peer;
    private readonly string _role;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private UniqueAddress? _peerMember;
    private bool _reported;
    private bool _shuttingDown;

    /// <param name="peerNode">The peer's node address (this node's own in single-node specs: then only DeathWatch applies).</param>
    /// <param name="peer">The peer's migration actor if known yet (else <see cref="WatchPeerActor"/> later).</param>
    /// <param name="role">How the parent names the peer in messages ("destination", "source").</param>
    public PeerWatch(Address peerNode, IActorRef? peer, string role)
    {
        _peerNode = peerNode;
        _peer = peer;
        _role = role;
        Receive<WatchPeerActor>(w => Context.Watch(w.Actor));
        Receive<ClusterEvent.CurrentClusterState>(s =>
        {
            var address = PeerAddress;
            _peerMember = s.Members.FirstOrDefault(m => m.Address.Equals(address))?.UniqueAddress;
            if (_peerMember is null)
            {
                // Not (yet) in this node's view: joining, or already gone. Learn its incarnation when it shows up; the
                // parent's own phase timeouts cover a node that never does.
                _log.Info("{0} node {1} is not a member in this node's view yet", _role, address);
            }
            else if (s.Members.Any(m => m.UniqueAddress.Equals(_peerMember) && m.Status is MemberStatus.Down or MemberStatus.Removed))
            {
                Report($"{_role} node {address} was downed by the cluster", nodeRemoved: true);
            }
        });
        Receive<ClusterEvent.MemberUp>(u =>
        {
            if (_peerMember is null && u.Member.Address.Equals(PeerAddress))
            {
                _peerMember = u.Member.UniqueAddress;
            }
        });
        Receive<ClusterEvent.MemberRemoved>(r => OnMemberGone(r.Member, "removed from"));
        Receive<ClusterEvent.MemberDowned>(r => OnMemberGone(r.Member, "downed by"));
        Receive<ClusterEvent.ClusterShuttingDown>(_ => _shuttingDown = true);
        Receive<Terminated>(t => Report($"the {_role}'s migration actor {t.ActorRef.Path} stopped" +
                                        (t.AddressTerminated ? " (its node is gone)" : ""), nodeRemoved: t.AddressTerminated));
    }

    /// <summary>Watches <paramref name="peer"/> and its node.</summary>
    public static Props Props(IActorRef peer, string role) =>
        Akka.Actor.Props.Create(() => new PeerWatch(peer.Path.Address, peer, role));

    /// <summary>Watches the node at <paramref name="peerNode"/>; its migration actor follows with <see cref="WatchPeerActor"/>.</summary>
    public static Props Props(Address peerNode, string role) =>
        Akka.Actor.Props.Create(() => new PeerWatch(peerNode, null, role));

    private bool PeerIsLocal => _peerNode.HasLocalScope || _peerNode.Equals(_cluster.SelfAddress);

    private Address PeerAddress => _peerNode.HasLocalScope ? _cluster.SelfAddress : _peerNode;

    protected override void PreStart()
    {
        if (_peer is not null)
        {
            Context.Watch(_peer);
        }

        if (!PeerIsLocal)
        {
            _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
                typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.MemberDowned), typeof(ClusterEvent.ClusterShuttingDown));
        }
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void OnMemberGone(Member member, string how)
    {
        if (_peerMember is { } peer && member.UniqueAddress.Equals(peer))
        {
            Report($"{_role} node {member.Address} was {how} the cluster", nodeRemoved: true);
        }
    }

    /// <summary>
    /// Tells the parent once. A node removal is a warning here. A peer actor that stopped is only logged at Info: a
    /// peer stops as well when it ended its side normally (the destination's incoming migration after the resume, just
    /// as the source's coordinator completes), which must not warn after every successful migration; when the stop is
    /// a real loss, the parent's reaction logs it (the failed migration's error or the take-back names this reason).
    /// </summary>
    private void Report(string why, bool nodeRemoved)
    {
        if (_reported || _shuttingDown || _cluster.IsTerminated)
        {
            return;
        }

        _reported = true;
        if (nodeRemoved)
        {
            _log.Warning("{0}", why);
        }
        else
        {
            _log.Info("{0}; the migration decides whether that ended it", why);
        }

        Context.Parent.Tell(new PeerLost(why, nodeRemoved));
    }
}
