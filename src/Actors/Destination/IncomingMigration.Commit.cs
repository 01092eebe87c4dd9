using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Destination;

// The Verified state of the destination: commit, or resolve a lost commit (docs/architecture.md, "Lost commit").
public sealed partial class IncomingMigration
{
    /// <summary>How often a destination in doubt asks the source node whether it released the guest.</summary>
    internal static readonly TimeSpan HandoverQueryInterval = TimeSpan.FromSeconds(1);

    private UniqueAddress? _sourceMember;
    private bool _watchingCluster;
    private bool _clusterShuttingDown;
    private bool _inDoubt;
    private int _unanswered;
    private HandoverDecision _lastAnswer;

    /// <summary>The node of the source coordinator (this node when the coordinator is local, as in single-node specs).</summary>
    private Address SourceAddress => _request.Source.Path.Address.HasLocalScope
        ? Akka.Cluster.Cluster.Get(Context.System).SelfAddress
        : _request.Source.Path.Address;

    /// <summary>
    /// DestinationVerified was sent. From here the source may release the guest at any moment, so this copy is never
    /// discarded without the source's word. Wait commit-timeout for CommitMigration; then ask the source node every
    /// <see cref="HandoverQueryInterval"/> (QueryHandover). Meanwhile follow the source node's membership: the
    /// incarnation that ran the migration is remembered now, so a restarted source at the same address is not mistaken
    /// for it.
    /// </summary>
    private void BecomeVerified()
    {
        Timers.StartSingleTimer("commit", new Timeout("waiting for commit"), _settings.CommitTimeout);
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var source = SourceAddress;
        _sourceMember = cluster.State.Members.FirstOrDefault(m => m.Address.Equals(source))?.UniqueAddress;
        if (_sourceMember is null)
        {
            _log.Warning("incoming migration {0}: source node {1} is not a cluster member in this node's view; a lost commit is resolved by asking it only", Id, source);
        }

        // ClusterShuttingDown too: when this node's cluster stops, it publishes every other member as removed.
        cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.ClusterShuttingDown));
        _watchingCluster = true;
        Become(Verified);
    }

    private void Verified()
    {
        Receive<CommitMigration>(_ => ClaimThenResume("the source committed the hand-over"));
        Receive<Cluster.PeerLost>(OnSourceLostAfterVerify);
        Receive<Ownership.ClaimResult>(OnResumeClaim);
        Receive<RetryOwnership>(_ => ClaimThenResume(_claimWhy));
        Receive<HoldResumeOver>(_ => OnHoldResumeOver());
        Receive<ChannelAccepted>(c => c.Io.Dispose()); // a late reconnect: everything has arrived
        Receive<AbortIncoming>(a => Discard($"aborted by source: {a.Reason}", tellSource: false));
        Receive<Timeout>(_ => BeginResolving());
        Receive<AskSource>(_ => AskSourceNode());
        Receive<HandoverStatus>(OnHandoverStatus);
        Receive<ClusterEvent.CurrentClusterState>(state =>
        {
            if (_sourceMember is { } source && !state.Members.Any(m => m.UniqueAddress.Equals(source)) && !LocalClusterStopping)
            {
                SourceNodeRemoved();
            }
        });
        Receive<ClusterEvent.MemberRemoved>(r =>
        {
            if (_sourceMember is { } source && r.Member.UniqueAddress.Equals(source) && !LocalClusterStopping)
            {
                SourceNodeRemoved();
            }
        });
        Receive<ClusterEvent.ClusterShuttingDown>(_ => _clusterShuttingDown = true);
        ReceiveAny(_ => { });
    }

    /// <summary>This node is leaving the cluster: the removals it then reports say nothing about the source.</summary>
    private bool LocalClusterStopping => _clusterShuttingDown || Akka.Cluster.Cluster.Get(Context.System).IsTerminated;

    /// <summary>Resumes the verified guest: on CommitMigration, or when the source's answer or death says it is ours.</summary>
    private void Resume()
    {
        Timers.CancelAll();
        var guest = _guest!;
        foreach (var d in guest.Devices)
        {
            d.Resume();
        }

        // Resume the vCPU where it stopped on the source.
        guest.Workload.SetPosition(_sourceDigests!.CpuBlock, _sourceDigests.CpuPage);
        guest.Workload.Start();
        _guest = null; // ownership moves to the node's registry
        Context.Parent.Tell(new IncomingGuestRunning(guest, Id));
        _request.Source.Tell(new GuestResumed(Id, _nodeName));
        Cleanup();
        Context.Stop(Self);
    }

    /// <summary>No CommitMigration within commit-timeout: the guest is in doubt. Ask the source node, periodically.</summary>
    private void BeginResolving()
    {
        if (_inDoubt)
        {
            return;
        }

        _inDoubt = true;
        _log.Warning("incoming migration {0} of {1}: verified, but no CommitMigration within {2}; asking source node {3} whether it released the guest. " +
                     "The guest stays paused here until it answers", Id, _request.Spec.Id, _settings.CommitTimeout, SourceAddress);
        var spec = _request.Spec;
        Context.Parent.Tell(new IncomingInDoubt(Id, new GuestInfo(spec.Id, _nodeName, "in-doubt", spec.RamBytes, spec.Devices.Count, Id.ToString())));
        AskSourceNode();
        Timers.StartPeriodicTimer("query", AskSource.Instance, HandoverQueryInterval);
    }

    private void AskSourceNode()
    {
        _unanswered++;
        if (_unanswered % 10 == 3)
        {
            _log.Error("incoming migration {0} of {1}: source node {2} has not answered {3} handover queries (unreachable or dead?). The verified " +
                       "guest stays paused here, neither resumed nor discarded, until the source answers or is removed from the cluster",
                Id, _request.Spec.Id, SourceAddress, _unanswered - 1);
        }

        Context.ActorSelection(new RootActorPath(SourceAddress) / "user" / Node.HypervisorNode.Name).Tell(new QueryHandover(Id), Self);
    }

    private void OnHandoverStatus(HandoverStatus status)
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
                ClaimThenResume("the source says it handed the guest over");
                break;
            case HandoverDecision.KeptBySource:
                Discard("no CommitMigration, and the source node says the migration ended there without releasing the guest: the source keeps it",
                    tellSource: false);
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

    /// <summary>
    /// The source node that ran the migration left the cluster (downed, crashed, shut down) before the commit. Its copy
    /// of the guest went with its process, so the verified copy here is the only one: resume it. Split-brain caveat in
    /// docs/architecture.md ("Lost commit"): a removed node is assumed dead, which the downing provider decides.
    /// </summary>
    private void SourceNodeRemoved()
    {
        _log.Warning("incoming migration {0} of {1}: source node {2} was removed from the cluster before the commit; the verified copy here is the " +
                     "only one left: claiming it", Id, _request.Spec.Id, SourceAddress);
        ClaimThenResume($"source node {SourceAddress} was removed from the cluster");
    }

    private void StopWatchingSourceNode()
    {
        if (_watchingCluster)
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
            _watchingCluster = false;
        }
    }

    private sealed record AskSource : INoSerializationVerificationNeeded
    {
        public static readonly AskSource Instance = new();
    }
}
