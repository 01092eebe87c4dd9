using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;

namespace Migration.Actors.Node;

/// <summary>
/// Records the address of every other member this node has seen Up, into a set owned by <see cref="NodeHost"/>: the
/// seeds a new incarnation joins after this one was downed (the original seeds may be gone, and a first node has none).
/// Addresses are never removed: a removed peer may come back at the same address, and a dead one simply does not
/// answer the join. The set holds one entry per distinct member address ever seen (a cluster's size, not its history
/// of incarnations). One actor per incarnation, at /user/peer-tracker.
/// </summary>
public sealed class PeerTracker : ReceiveActor
{
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);

    public PeerTracker(ConcurrentDictionary<Address, byte> peers)
    {
        Receive<ClusterEvent.MemberUp>(up =>
        {
            if (up.Member.Address != _cluster.SelfAddress)
            {
                peers.TryAdd(up.Member.Address, 0);
            }
        });
        Receive<ClusterEvent.CurrentClusterState>(state =>
        {
            foreach (var m in state.Members.Where(m => m.Status == MemberStatus.Up && m.Address != _cluster.SelfAddress))
            {
                peers.TryAdd(m.Address, 0);
            }
        });
    }

    public static Props Props(ConcurrentDictionary<Address, byte> peers) => Akka.Actor.Props.Create(() => new PeerTracker(peers));

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberUp));

    protected override void PostStop() => _cluster.Unsubscribe(Self);
}
