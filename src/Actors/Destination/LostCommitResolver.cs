using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Node;

namespace Migration.Actors.Destination;

/// <summary>
/// The Verified phase's wait for the commit, and the resolution of a lost one (docs/architecture.md, "Lost commit").
/// DestinationVerified was sent: from here the source may release the guest at any moment, so the copy here is never
/// discarded without the source's word. Waits commit-timeout for CommitMigration; then the guest is in doubt and the
/// source node is asked every <see cref="HandoverQueryInterval"/> (QueryHandover) until its answer decides. Meanwhile it
/// follows the source node's membership: the incarnation that ran the migration is remembered when Verified begins, so
/// a restarted source at the same address is not mistaken for it, and its removal means the copy here is the only one.
/// Resuming goes through <see cref="IncomingOwnership.ClaimThenResume"/>; discarding through <see cref="IIncomingOutcomes.Discard"/>.
/// Threading: owned by the IncomingMigration and called only on its thread, with its actor context, self and timers;
/// cluster events and HandoverStatus come to the actor, whose Verified state hands them here.
/// </summary>
internal sealed class LostCommitResolver
{
    /// <summary>How often a destination in doubt asks the source node whether it released the guest.</summary>
    internal static readonly TimeSpan HandoverQueryInterval = TimeSpan.FromSeconds(1);

    private readonly PrepareIncoming _request;
    private readonly string _nodeName;
    private readonly TimeSpan _commitTimeout;
    private readonly IActorContext _context;
    private readonly IActorRef _self;
    private readonly ITimerScheduler _timers;
    private readonly ILoggingAdapter _log;
    private readonly IncomingOwnership _ownership;
    private readonly IIncomingOutcomes _outcomes;
    private UniqueAddress? _sourceMember;
    private bool _watchingCluster;
    private bool _clusterShuttingDown;
    private bool _inDoubt;
    private int _unanswered;
    private HandoverDecision _lastAnswer;

    /// <param name="self">The IncomingMigration: the cluster subscriber and the sender of QueryHandover.</param>
    public LostCommitResolver(PrepareIncoming request, string nodeName, TimeSpan commitTimeout, IActorContext context, IActorRef self, ITimerScheduler timers,
        ILoggingAdapter log, IncomingOwnership ownership, IIncomingOutcomes outcomes)
    {
        _request = request;
        _nodeName = nodeName;
        _commitTimeout = commitTimeout;
        _context = context;
        _self = self;
        _timers = timers;
        _log = log;
        _ownership = ownership;
        _outcomes = outcomes;
    }

    private Guid Id => _request.MigrationId;

    /// <summary>The node of the source coordinator (this node when the coordinator is local, as in single-node specs).</summary>
    private Address SourceAddress => _request.Source.Path.Address.HasLocalScope
        ? Akka.Cluster.Cluster.Get(_context.System).SelfAddress
        : _request.Source.Path.Address;

    /// <summary>This node is leaving the cluster: the removals it then reports say nothing about the source.</summary>
    private bool LocalClusterStopping => _clusterShuttingDown || Akka.Cluster.Cluster.Get(_context.System).IsTerminated;

    /// <summary>
    /// Verified begins: times the commit out (a <see cref="CommitTimeout"/>), remembers the source node's incarnation
    /// and subscribes to removals (and to this node's own cluster shutting down).
    /// </summary>
    public void AwaitCommit()
    {
        _timers.StartSingleTimer("commit", CommitTimeout.Instance, _commitTimeout);
        var cluster = Akka.Cluster.Cluster.Get(_context.System);
        var source = SourceAddress;
        _sourceMember = cluster.State.Members.FirstOrDefault(m => m.Address.Equals(source))?.UniqueAddress;
        if (_sourceMember is null)
        {
            _log.Warning("incoming migration {0}: source node {1} is not a cluster member in this node's view; a lost commit is resolved by asking it only", Id, source);
        }

        // ClusterShuttingDown too: when this node's cluster stops, it publishes every other member as removed.
        cluster.Subscribe(_self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.ClusterShuttingDown));
        _watchingCluster = true;
    }

    /// <summary>The subscription's snapshot: the source's incarnation may already be gone.</summary>
    public void OnClusterState(ClusterEvent.CurrentClusterState state)
    {
        if (_sourceMember is { } source && !state.Members.Any(m => m.UniqueAddress.Equals(source)) && !LocalClusterStopping)
        {
            SourceNodeRemoved();
        }
    }

    public void OnMemberRemoved(ClusterEvent.MemberRemoved r)
    {
        if (_sourceMember is { } source && r.Member.UniqueAddress.Equals(source) && !LocalClusterStopping)
        {
            SourceNodeRemoved();
        }
    }

    public void OnClusterShuttingDown() => _clusterShuttingDown = true;

    /// <summary>
    /// The source is gone after the verification (its PeerWatch). Its node removed: the copy here may be the only one,
    /// claim it. Only its coordinator stopped (node alive): ask the node what it decided (QueryHandover), as for a lost commit.
    /// </summary>
    public void OnSourceLost(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            _ownership.ClaimThenResume(lost.Why);
        }
        else
        {
            BeginResolving();
        }
    }

    /// <summary>No CommitMigration within commit-timeout (or the source coordinator stopped): the guest is in doubt. Ask the source node, periodically.</summary>
    public void BeginResolving()
    {
        if (_inDoubt)
        {
            return;
        }

        _inDoubt = true;
        _log.Warning("incoming migration {0} of {1}: verified, but no CommitMigration within {2}; asking source node {3} whether it released the guest. " +
                     "The guest stays paused here until it answers", Id, _request.Spec.Id, _commitTimeout, SourceAddress);
        var spec = _request.Spec;
        _context.Parent.Tell(new IncomingInDoubt(Id, new GuestInfo(spec.Id, _nodeName, "in-doubt", spec.RamBytes, spec.Devices.Count, Id.ToString())));
        AskSourceNode();
        _timers.StartPeriodicTimer("query", AskSource.Instance, HandoverQueryInterval);
    }

    public void AskSourceNode()
    {
        _unanswered++;
        if (_unanswered % 10 == 3)
        {
            _log.Error("incoming migration {0} of {1}: source node {2} has not answered {3} handover queries (unreachable or dead?). The verified " +
                       "guest stays paused here, neither resumed nor discarded, until the source answers or is removed from the cluster",
                Id, _request.Spec.Id, SourceAddress, _unanswered - 1);
        }

        _context.ActorSelection(new RootActorPath(SourceAddress) / "user" / HypervisorNode.Name).Tell(new QueryHandover(Id), _self);
    }

    /// <summary>The source node's answer: handed over (claim), kept by the source (discard), or not decided yet (ask again).</summary>
    public void OnHandoverStatus(HandoverStatus status)
    {
        if (status.MigrationId != Id)
        {
            return;
        }

        _unanswered = 0;
        var changed = status.Decision != _lastAnswer;
        _lastAnswer = status.Decision;
        switch (status.Decision)
        {
            case HandoverDecision.HandedOver:
                _log.Warning("incoming migration {0} of {1}: the source released the guest but its CommitMigration never arrived; claiming the guest here",
                    Id, _request.Spec.Id);
                _ownership.ClaimThenResume("the source says it handed the guest over");
                break;
            case HandoverDecision.KeptBySource:
                _outcomes.Discard("no CommitMigration, and the source node says the migration ended there without releasing the guest: the source keeps it");
                break;
            case HandoverDecision.InProgress when changed:
                _log.Info("incoming migration {0}: the source has not released the guest yet; asking again", Id);
                break;
            case HandoverDecision.InProgress:
                break;
            default:
                if (changed)
                {
                    _log.Error("incoming migration {0} of {1}: source node {2} answers {3} (restarted?); the verified guest stays paused here until " +
                               "the source's former incarnation is removed from the cluster", Id, _request.Spec.Id, SourceAddress, status.Decision);
                }

                break;
        }
    }

    /// <summary>The actor stops (PostStop): no more cluster events.</summary>
    public void StopWatchingSourceNode()
    {
        if (_watchingCluster)
        {
            Akka.Cluster.Cluster.Get(_context.System).Unsubscribe(_self);
            _watchingCluster = false;
        }
    }

    /// <summary>
    /// The source node that ran the migration left the cluster (downed, crashed, shut down) before the commit. Its copy
    /// of the guest went with its process, so the verified copy here is the only one: resume it. Split-brain caveat in
    /// docs/architecture.md ("Lost commit"): a removed node is assumed dead, which the downing provider decides.
    /// </summary>
    private void SourceNodeRemoved()
    {
        _log.Warning("incoming migration {0} of {1}: source node {2} was removed from the cluster before the commit; the verified copy here is the " +
                     "only one left: claiming it", Id, _request.Spec.Id, SourceAddress);
        _ownership.ClaimThenResume($"source node {SourceAddress} was removed from the cluster");
    }
}
