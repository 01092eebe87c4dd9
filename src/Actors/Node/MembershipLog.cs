using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Migration.Actors.Node;

/// <summary>
/// Logs the cluster's membership changes as an operator reads them (INFO: a member is up, left, was removed;
/// WARNING: unreachable), one line each, instead of Akka.Cluster's own chatter (filtered by NodeLogFilter).
/// One per node, started by NodeHost; it only subscribes and logs.
/// </summary>
public sealed class MembershipLog : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);

    public MembershipLog()
    {
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
        Receive<ClusterEvent.MemberUp>(m => _log.Info("member up: {0} ({1})", m.Member.Address, Name(m.Member)));
        Receive<ClusterEvent.MemberLeft>(m => _log.Info("member leaving: {0} ({1})", m.Member.Address, Name(m.Member)));
        Receive<ClusterEvent.MemberRemoved>(m => _log.Info("member removed: {0} ({1}), was {2}", m.Member.Address, Name(m.Member), m.PreviousStatus));
        Receive<ClusterEvent.UnreachableMember>(m => _log.Warning("member unreachable: {0} ({1})", m.Member.Address, Name(m.Member)));
        Receive<ClusterEvent.ReachableMember>(m => _log.Info("member reachable again: {0} ({1})", m.Member.Address, Name(m.Member)));
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new MembershipLog());

    protected override void PreStart() => _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
        typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberLeft), typeof(ClusterEvent.MemberRemoved),
        typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.ReachableMember));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private static string Name(Member m) =>
        m.Roles.FirstOrDefault(r => r.StartsWith(NodeHost.NameRolePrefix, StringComparison.Ordinal))?[NodeHost.NameRolePrefix.Length..] ?? string.Join(",", m.Roles);
}
