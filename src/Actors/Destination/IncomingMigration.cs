using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Migration.Transport.Wire;

namespace Migration.Actors.Destination;

/// <summary>
/// The destination side of one migration, one Become state per phase: Allocating (-> DiscardingAllocation on an abort) -> Receiving (RAM and device state
/// arrive and devices load, until verified) -> Verified (DestinationVerified sent; in doubt when the commit does not
/// come) -> the guest runs here and the node owns it, or Discarded. Before Verified any failure or abort discards
/// everything (channels closed, RAM unmapped, devices reset) and the source keeps the guest; once verified the copy is
/// resumed or discarded only on the source's word (docs/architecture.md, "Lost commit", "Ownership rules").
/// The states and the decisions between them are this class's; the work is its collaborators', one purpose each (the
/// table in docs/architecture.md, "Destination structure"): IncomingResources, IncomingChannels, IterationBarrier,
/// IncomingVerification, IncomingOwnership, LostCommitResolver, IncomingFaultHolds, IncomingTrafficMeter, IncomingGuestAllocation.
/// Threading: all state, the collaborators' included, is touched only on this actor's thread; work done elsewhere
/// (allocation, RAM hashing, device loads, receive loops) reports back by message.
/// </summary>
public sealed class IncomingMigration : ReceiveActor, IWithTimers, IIncomingOutcomes
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PrepareIncoming _request;
    private readonly IActorRef _listener;
    private readonly string _host;
    private readonly int _port;
    private readonly string _nodeName;
    private readonly bool _tls;
    private readonly MigrationSettings _settings;
    private readonly byte[] _token = TokenProof.CreateToken();
    private readonly IncomingAllocationProbe _allocation = new();
    private readonly IncomingResources _resources = new();
    private readonly IterationBarrier _barrier;
    private readonly IncomingChannels _channels;
    private readonly IncomingVerification _verification;
    private readonly IncomingFaultHolds _holds;
    private readonly IncomingOwnership _ownership;
    private readonly LostCommitResolver _lostCommit;
    private readonly IncomingTrafficMeter _traffic;
    private readonly IncomingGuestAllocation _allocating = new();

    /// <param name="settings">This node's settings composed with the request's validated parameters (IncomingAdmission).</param>
    public IncomingMigration(PrepareIncoming request, MigrationSettings settings, IActorRef listener, string host, int port, string nodeName, bool tls = false)
    {
        _tls = tls;
        _request = request;
        _listener = listener;
        _host = host;
        _port = port;
        _nodeName = nodeName;
        _settings = settings;
        var id = request.MigrationId;
        _barrier = new IterationBarrier(id, settings.Channels, request.Source);
        _channels = new IncomingChannels(id, settings, Context, Self, Timers, _log, _resources, request.Source, listener);
        _verification = new IncomingVerification(settings.Channels, _resources, _allocation);
        _holds = new IncomingFaultHolds(id, settings, Timers, _log);
        var majorityTimeout = OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout;
        _ownership = new IncomingOwnership(request, nodeName, majorityTimeout, Context, Timers, _log, _holds, this);
        _lostCommit = new LostCommitResolver(request, nodeName, settings.CommitTimeout, Context, Self, Timers, _log, _ownership, this);
        _traffic = new IncomingTrafficMeter(id, request.Spec.Id, Context.Parent, Timers, settings.ProgressInterval, _resources);
        Become(Allocating);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private Guid Id => _request.MigrationId;

    public static Props Props(PrepareIncoming request, MigrationSettings settings, IActorRef listener, string host, int port, string nodeName, bool tls = false) =>
        Akka.Actor.Props.Create(() => new IncomingMigration(request, settings, listener, host, port, nodeName, tls));

    protected override void PreStart()
    {
        var spec = _request.Spec;
        var prefault = _settings.PrefaultDestination;
        // Injected load delays apply to this migration's devices only; the guest keeps its spec as the source sent it.
        var loadDelays = MigrationParameters.LoadDelays(_settings);
        var pool = NodeMemoryPool.Get(Context.System).Pool; // touched memory when the node has some (scrubbed by IncomingRamTracker)
        _allocating.Start(spec, prefault, loadDelays, pool, Self);
    }

    /// <summary>Allocating: the guest is being created off this thread (PreStart).</summary>
    private void Allocating()
    {
        Receive<Allocated>(a =>
        {
            _allocating.Handled();
            OnAllocated(a.Guest);
        });
        Receive<AllocationFailed>(f =>
        {
            _allocating.Handled();
            _request.Source.Tell(new PrepareRefused(Id, $"destination {_nodeName} could not allocate guest {_request.Spec.Id}: {f.Reason}"));
            Discard(f.Reason);
        });
        // The allocation cannot be cancelled: wait for it, so its memory goes back before the node counts it free.
        Receive<AbortIncoming>(a => Become(() => DiscardingAllocation(a.Reason)));
    }

    /// <summary>
    /// Aborted while the guest was being allocated (a superseding prepare, the source gave up): the allocation still
    /// runs off this thread and its result comes here. The memory it mapped goes back to the node's pool before the
    /// node hears IncomingDiscarded (which frees the guest's share of the node's capacity); then this stops.
    /// </summary>
    private void DiscardingAllocation(string reason)
    {
        Receive<Allocated>(a =>
        {
            _allocating.Handled();
            a.Guest.Release(NodeMemoryPool.Get(Context.System).Pool);
            Discard(reason);
        });
        Receive<AllocationFailed>(_ =>
        {
            _allocating.Handled();
            Discard(reason);
        });
        Receive<AbortIncoming>(a => _log.Debug("incoming migration {0}: already discarding ({1}); ignoring abort '{2}'", Id, reason, a.Reason));
    }

    private void OnAllocated(GuestVm guest)
    {
        _resources.Start(guest, _settings, Context, Self, _request.Source, Id);
        _verification.ExpectDevices(guest.Devices.Count);
        _listener.Tell(new RegisterIncoming(Id, _token, _settings.Channels, Self));
        _ownership.WatchSourceAndReadStartEpoch();
        _channels.StartConnectTimer();
        // Answers the prepare, unless an injected hold:setup keeps the source in setup for a fault drill (HoldSetupOver).
        var ack = new PrepareAck(Id, _host, _port, _token, _resources.Budget.BudgetBytes, Self, _tls, RawRamUnderCodec: true);
        if (!_holds.TryHoldSetup(ack))
        {
            _request.Source.Tell(ack);
        }

        _traffic.StartTicking();
        Timers.StartPeriodicTimer("allocation", SampleAllocation.Instance, TimeSpan.FromMilliseconds(200));
        Become(Receiving);
    }

    /// <summary>Receiving (and loading): channels deliver RAM and device chunks, the barrier syncs iterations, devices report their loads.</summary>
    private void Receiving()
    {
        Receive<ChannelAccepted>(_channels.Accept);
        Receive<SyncReached>(_barrier.OnSync);
        Receive<RecvChannelStarted>(s => _traffic.AddReceiver(s.Receiver));
        Receive<TrafficTick>(_ => _traffic.Report(final: false));
        // Per byte delivered, as the source counts per byte sent: guest RAM written plus device-state bytes received.
        Receive<SampleAllocation>(_ => _allocation.Sample(_resources.RamTracker.BytesWritten + _resources.Budget.ReservedTotalBytes));
        Receive<RecvChannelLost>(OnChannelLost);
        Receive<GateReceipt>(_channels.OnReceipt);
        Receive<RecvChannelEnded>(e =>
        {
            if (_verification.ChannelEnded(e))
            {
                // Everything has arrived: the source's digests must follow; a copy never waits for them unbounded.
                Timers.StartSingleTimer("digests", new IncomingTimeout("for the source's digests after every channel ended"), _settings.VerifyTimeout);
            }

            TryVerify();
        });
        Receive<DeviceLoaded>(l =>
        {
            _verification.OnDeviceLoaded(l);
            TryVerify();
        });
        Receive<SourceDigests>(d =>
        {
            if (IncomingVerification.SourceDigestsProblem(d, Id, _resources.Guest!) is { } problem)
            {
                Fail($"source digests: {problem}");
                return;
            }

            _verification.OnSourceDigests(d);
            TryVerify();
        });
        Receive<RamDigestsReady>(r =>
        {
            _verification.OnRamDigests(r.Digests);
            TryVerify();
        });
        Receive<RecvChannelFailed>(f => Fail(f.Reason));
        Receive<GateViolation>(v => Fail($"protocol violation: {v.Reason}"));
        Receive<DeviceLoadFailed>(f => Fail($"device load failed: {f.Reason}"));
        Receive<IncomingTimeout>(t => Fail($"timed out {t.What}"));
        Receive<AbortIncoming>(a => Discard($"aborted by source: {a.Reason}"));
        Receive<PeerLost>(_ownership.OnSourceLostBeforeVerify);
        Receive<ClaimResult>(r =>
        {
            if (_ownership.OnStartEpoch(r))
            {
                TryVerify();
            }
        });
        Receive<RetryOwnership>(_ => _ownership.ReadStartEpoch());
        Receive<HoldVerifyOver>(h => AnnounceVerified(h.Stats));
        Receive<HoldSetupOver>(h =>
        {
            // The injected setup hold is over: acknowledge now, and give the channels their whole connect time from here.
            _channels.StartConnectTimer();
            _request.Source.Tell(h.Ack);
        });
    }

    /// <summary>A channel's connection broke: wait for the source to reconnect it, unless reconnects are off or the stop's digests are here.</summary>
    private void OnChannelLost(RecvChannelLost l)
    {
        if (!_settings.ReconnectEnabled || _verification.Source is not null)
        {
            Fail(l.Reason);
            return;
        }

        // What a lost connection delivered still counts (the report's page counts).
        _verification.CountPages(l.NormalPages, l.ZeroPages);
        _channels.AwaitReconnect(l);
    }

    /// <summary>
    /// Verifies once everything is here: every channel ended, the RAM hashed (started here once they all ended), the
    /// source's digests, every device loaded, and the start epoch read; not again once an injected hold:verify began.
    /// </summary>
    private void TryVerify()
    {
        if (_log.IsDebugEnabled)
        {
            _log.Debug(_verification.Describe(Id));
        }

        if (!_verification.AllChannelsEnded || _resources.Guest is not { } guest)
        {
            return;
        }

        if (!_verification.RamHashed)
        {
            // All RAM has arrived once every channel ended: hash what was not hashed yet while devices finish loading.
            _verification.StartRamHashing(Self);
            return;
        }

        if (!_verification.SourceAndDevicesReady || !_ownership.StartEpochKnown || _holds.VerifyHoldBegun)
        {
            return;
        }

        var stats = _verification.Stats();
        var mismatches = _verification.Mismatches(guest);
        if (mismatches.Count > 0)
        {
            Fail("digest mismatch: " + string.Join("; ", mismatches));
            return;
        }

        _traffic.Report(final: true);
        Timers.Cancel("allocation");
        Timers.Cancel("digests");
        AnnounceVerified(stats);
    }

    /// <summary>Sends DestinationVerified (after an injected hold, if any) and enters Verified.</summary>
    private void AnnounceVerified(IncomingStats stats)
    {
        if (_holds.TryHoldVerify(stats))
        {
            return;
        }

        _request.Source.Tell(new DestinationVerified(Id, stats));
        _lostCommit.AwaitCommit();
        Become(Verified);
    }

    /// <summary>
    /// Verified, and in doubt once the commit timed out: the copy here is resumed or discarded only on the source's
    /// word (CommitMigration, its node's HandoverStatus, its removal) and a majority-confirmed claim.
    /// </summary>
    private void Verified()
    {
        Receive<CommitMigration>(_ => _ownership.ClaimThenResume("the source committed the hand-over"));
        Receive<PeerLost>(_lostCommit.OnSourceLost);
        Receive<ClaimResult>(_ownership.OnResumeClaim);
        Receive<RetryOwnership>(_ => _ownership.RetryClaim());
        Receive<HoldResumeOver>(_ => _ownership.OnHoldResumeOver());
        Receive<ChannelAccepted>(c => c.Io.Dispose()); // a late reconnect: everything has arrived
        Receive<AbortIncoming>(a =>
        {
            // Once a claim was started its write may land in the record: discarding now could leave the record naming
            // this node with no guest here. The claim's answer decides (Refused: the source took the guest back).
            if (_ownership.ClaimStarted)
            {
                _log.Warning("incoming migration {0}: an abort ({1}) after the claim of the guest started; the ownership record decides", Id, a.Reason);
                return;
            }

            Discard($"aborted by source: {a.Reason}");
        });
        Receive<CommitTimeout>(_ => _lostCommit.BeginResolving());
        Receive<AskSource>(_ => _lostCommit.AskSourceNode());
        Receive<HandoverStatus>(_lostCommit.OnHandoverStatus);
        Receive<ClusterEvent.CurrentClusterState>(_lostCommit.OnClusterState);
        Receive<ClusterEvent.MemberRemoved>(_lostCommit.OnMemberRemoved);
        Receive<ClusterEvent.ClusterShuttingDown>(_ => _lostCommit.OnClusterShuttingDown());
        // Late messages of the transfer (a channel's end or loss, a traffic or allocation tick, a stale IncomingTimeout of
        // an earlier wait) change nothing once verified.
        ReceiveAny(m => _log.Debug("incoming migration {0}: verified, ignoring a late {1} from {2}", Id, m.GetType().Name, Sender));
    }

    /// <summary>Resumes the verified guest: on CommitMigration, or when the source's answer or death says it is ours.</summary>
    private void Resume()
    {
        Timers.CancelAll();
        var guest = _resources.Guest!;
        foreach (var d in guest.Devices)
        {
            d.Resume();
        }

        // Resume the vCPU where it stopped on the source.
        var source = _verification.Source!;
        guest.Workload.SetPosition(source.CpuBlock, source.CpuPage);
        guest.Workload.Start();
        _resources.HandGuestToNode(); // ownership moves to the node's registry
        Context.Parent.Tell(new IncomingGuestRunning(guest, Id));
        _request.Source.Tell(new GuestResumed(Id, _nodeName));
        Cleanup();
        Context.Stop(Self);
    }

    private void Fail(string reason)
    {
        _log.Warning("incoming migration {0} of {1} failed: {2}", Id, _request.Spec.Id, reason);
        _request.Source.Tell(new IncomingFailed(Id, reason, _verification.Stats()));
        Discard(reason);
    }

    /// <summary>Drops the copy here without a word to the source (it aborted, or <see cref="Fail"/> already told it).</summary>
    private void Discard(string reason)
    {
        Context.Parent.Tell(new IncomingDiscarded(_request.Spec.Id, Id, reason));
        Cleanup();
        Context.Stop(Self);
    }

    private void Cleanup()
    {
        _listener.Tell(new UnregisterIncoming(Id));
        _barrier.CancelAll();
    }

    void IIncomingOutcomes.Resume() => Resume();

    void IIncomingOutcomes.Discard(string reason) => Discard(reason);

    protected override void PostStop()
    {
        _lostCommit.StopWatchingSourceNode();
        _resources.Release(Context.System);
        _allocating.ReleaseIfUnhandled(NodeMemoryPool.Get(Context.System).Pool); // stopped before the allocation's result was handled
    }
}
