using Akka.Actor;
using Akka.Event;
using Migration.Actors.Infrastructure;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Migration.Transport.Flow;
using Migration.Transport.Wire;

namespace Migration.Actors.Destination;

/// <summary>
/// The destination side of one migration: Allocating -> Receiving -> (Loading) -> Verified -> Running, or Discarded.
/// Allocates the empty guest (RAM pre-faulted at prepare), registers the migration's token with the node's
/// channel listener, answers the source with PrepareAck, creates one RecvChannel per accepted connection and
/// one ReorderGate (with its DeviceLoader) per device, runs the per-iteration sync barrier, compares digests,
/// and resumes the guest on CommitMigration. On any failure or abort it discards everything: channels closed,
/// RAM unmapped, devices reset; the source keeps the guest. Once verified it never discards on its own: if the commit
/// does not come, it asks the source node whether the source released the guest (QueryHandover) and resumes or
/// discards on that answer only, or resumes when the source node is removed from the cluster (IncomingMigration.Commit.cs).
/// All state is touched only on this actor's thread.
/// </summary>
public sealed partial class IncomingMigration : ReceiveActor, IWithTimers
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
    private readonly Dictionary<uint, Dictionary<int, TaskCompletionSource>> _barriers = new();
    private readonly Dictionary<int, LostChannel> _lost = new();
    private uint _releasedThrough;
    private int _channelGeneration;
    private readonly HashSet<int> _ended = [];
    private GuestVm? _guest;
    private IncomingRamTracker? _ramTracker;
    private readonly IncomingAllocationProbe _allocation = new();
    private WorkerPool? _pool;
    private DeviceBufferBudget? _budget;
    private ReceiveLimits? _limits;
    private IActorRef[] _gates = [];
    private IActorRef?[] _channels = [];
    private DeviceLoaded?[] _loaded = [];
    private SourceDigests? _sourceDigests;
    private string[]? _ramDigests;
    private long _normalPages;
    private long _zeroPages;
    private bool _verifying;

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
        Task.Run(() => GuestFactory.CreateIncoming(spec, prefault, loadDelays, pool))
            .PipeTo(Self, success: g => new Allocated(g), failure: e => new AllocationFailed(e.GetBaseException().Message));
    }

    private void Allocating()
    {
        Receive<Allocated>(a => OnAllocated(a.Guest));
        Receive<AllocationFailed>(f =>
        {
            _request.Source.Tell(new PrepareRefused(Id, $"destination {_nodeName} could not allocate guest {_request.Spec.Id}: {f.Reason}"));
            Discard(f.Reason, tellSource: false);
        });
        Receive<AbortIncoming>(a => Discard(a.Reason, tellSource: false));
    }

    private void OnAllocated(GuestVm guest)
    {
        _guest = guest;
        _ramTracker = new IncomingRamTracker(guest.Blocks, guest.Blocks.Select(b => b.Recycled).ToArray(), IncomingRamTracker.DefaultInterval, _settings.PopulateAhead,
            _settings.EffectivePopulateThreads);
        var devices = guest.Devices;
        _budget = new DeviceBufferBudget(_settings.DeviceBufferBudget);
        _limits = new ReceiveLimits(
            _settings.Codec, _settings.PacketPages, _settings.ChunkSize,
            guest.Blocks.Select(b => (long)b.PageCount).ToArray(),
            devices.Select(d => DeviceSlot.Of((uint)d.Identity.Instance)).ToArray());
        if (devices.Count > 0)
        {
            // The receive loops rent every chunk from the node's chunk pool: fill it for this budget now, at prepare,
            // so that no chunk buffer is allocated while device state streams (issue 9's steady-allocation target).
            DeviceChunkBuffers.Prepare(_budget.BudgetBytes, _settings.ChunkSize);
        }

        // The migration's own pool for device loading: created now, disposed when this migration ends.
        _pool = new WorkerPool($"load-{Id.ToString()[..8]}", Math.Clamp(devices.Count, 1, Environment.ProcessorCount), Math.Max(16, devices.Count * 4));
        foreach (var d in devices)
        {
            d.StartResuming();
        }

        var batching = CreditBatchPolicy.For(_settings.CreditBatchChunks, _settings.CreditBatchInterval, _budget.BudgetBytes, _settings.ChunkSize, devices.Count);
        _gates = devices.Select((d, i) =>
            Context.ActorOf(ReorderGate.Props(i, Id, d, _pool, _budget, Self, _request.Source, batching), $"gate-{i}")).ToArray();
        _loaded = new DeviceLoaded?[devices.Count];
        _channels = new IActorRef?[_settings.Channels];
        _listener.Tell(new RegisterIncoming(Id, _token, _settings.Channels, Self));
        WatchSourceAndReadOwnership();
        Timers.StartSingleTimer("connect", new Timeout("waiting for channels"), _settings.ConnectTimeout + TimeSpan.FromSeconds(10));
        AckPrepare(new PrepareAck(Id, _host, _port, _token, _budget.BudgetBytes, Self, _tls)); // an injected hold:setup restarts "connect" when it ends
        Timers.StartPeriodicTimer("traffic", TrafficTick.Instance, _settings.ProgressInterval);
        Timers.StartPeriodicTimer("allocation", SampleAllocation.Instance, TimeSpan.FromMilliseconds(200));
        Become(Receiving);
    }

    private void Receiving()
    {
        Receive<ChannelAccepted>(c =>
        {
            if (c.Index >= _channels.Length || _channels[c.Index] is not null)
            {
                c.Io.Dispose();
                return;
            }

            // A reconnected channel starts one past the last Sync its old connection delivered.
            uint first = 1;
            if (_lost.Remove(c.Index, out var lost))
            {
                first = lost.Delivered + 1;
                Timers.Cancel($"reconnect-{c.Index}");
                _log.Info("incoming migration {0}: channel {1} reconnected as connection {2} (resuming at iteration {3})", Id, c.Index, c.Connection, first);
            }

            _channels[c.Index] = Context.ActorOf(RecvChannel.Props(c.Index, c.Io, _limits!, _guest!.Blocks, _settings.Codec, _settings.CodecLevel,
                _gates, _budget!, Self, _settings.ChannelIdleTimeout, first, c.Connection, _ramTracker), $"channel-{c.Index}-{++_channelGeneration}");
            if (_channels.All(x => x is not null))
            {
                Timers.Cancel("connect");
            }
        });
        Receive<SyncReached>(OnSync);
        Receive<RecvChannelStarted>(s => _receivers.Add(s.Receiver));
        Receive<TrafficTick>(_ => ReportTraffic(final: false));
        Receive<SampleAllocation>(_ => _allocation.Sample(_ramTracker!.BytesWritten));
        Receive<RecvChannelLost>(OnChannelLost);
        Receive<GateReceipt>(OnReceipt);
        Receive<RecvChannelEnded>(e =>
        {
            _ended.Add(e.Channel);
            _normalPages += e.NormalPages;
            _zeroPages += e.ZeroPages;
            if (_ended.Count == _channels.Length)
            {
                // Everything has arrived: the source's digests must follow; a copy never waits for them unbounded.
                Timers.StartSingleTimer("digests", new Timeout("for the source's digests after every channel ended"), _settings.VerifyTimeout);
            }

            TryVerify();
        });
        Receive<DeviceLoaded>(l =>
        {
            _loaded[l.DeviceIndex] = l;
            TryVerify();
        });
        Receive<SourceDigests>(d =>
        {
            _sourceDigests = d;
            TryVerify();
        });
        Receive<RamDigestsReady>(r =>
        {
            _ramDigests = r.Digests;
            TryVerify();
        });
        Receive<RecvChannelFailed>(f => Fail(f.Reason));
        Receive<GateViolation>(v => Fail($"protocol violation: {v.Reason}"));
        Receive<DeviceLoadFailed>(f => Fail($"device load failed: {f.Reason}"));
        Receive<Timeout>(t => Fail($"timed out {t.What}"));
        Receive<AbortIncoming>(a => Discard($"aborted by source: {a.Reason}", tellSource: false));
        Receive<Cluster.PeerLost>(OnSourceLostBeforeVerify);
        Receive<Ownership.ClaimResult>(OnStartEpoch);
        Receive<RetryOwnership>(_ => ReadStartEpoch());
        Receive<HoldVerifyOver>(h => AnnounceVerified(h.Stats));
        Receive<HoldSetupOver>(OnHoldSetupOver);
    }

    /// <summary>
    /// The per-iteration barrier: a channel that read Sync(k) waits until every channel has read it, so no page of
    /// iteration k can be written after a page of k+1. A reconnected channel starts after the last Sync its old
    /// connection delivered, so it never repeats one; keying by channel (a repeat takes the old slot) and passing a
    /// Sync of an iteration already released are guards that keep a duplicate from opening a barrier early.
    /// </summary>
    private void OnSync(SyncReached s)
    {
        if (s.Iteration <= _releasedThrough)
        {
            s.Release.TrySetResult();
            return;
        }

        if (!_barriers.TryGetValue(s.Iteration, out var waiting))
        {
            waiting = new Dictionary<int, TaskCompletionSource>();
            _barriers[s.Iteration] = waiting;
        }

        waiting[s.Channel] = s.Release;
        if (waiting.Count == _channels.Length)
        {
            _barriers.Remove(s.Iteration);
            _releasedThrough = s.Iteration;
            foreach (var t in waiting.Values)
            {
                t.TrySetResult();
            }

            // Every page sent before these Syncs is in guest RAM: the source may forget which channel carried it.
            _request.Source.Tell(new IterationReceived(Id, s.Iteration));
        }
    }

    /// <summary>
    /// A channel's connection broke and its receive loop has ended (nothing of it touches RAM or the budget any more).
    /// Asks every gate which chunks it holds (each gate's mailbox already has every chunk that loop read), then tells
    /// the source what the old connection delivered and lets the listener accept the channel again.
    /// </summary>
    private void OnChannelLost(RecvChannelLost l)
    {
        if (!_settings.ReconnectEnabled || _sourceDigests is not null)
        {
            Fail(l.Reason);
            return;
        }

        // What a lost connection delivered still counts (the report's page counts).
        _normalPages += l.NormalPages;
        _zeroPages += l.ZeroPages;
        _log.Warning("incoming migration {0}: {1}; waiting for the source to reconnect the channel", Id, l.Reason);
        if (_channels[l.Channel] is { } old)
        {
            Context.Stop(old);
        }

        _channels[l.Channel] = null;
        var lost = new LostChannel(l.Connection, l.DeliveredThroughIteration, new DeviceReceipt?[_gates.Length]);
        _lost[l.Channel] = lost;
        Timers.StartSingleTimer($"reconnect-{l.Channel}", new Timeout($"waiting for channel {l.Channel} to reconnect ({l.Reason})"),
            _settings.ChannelReconnectTimeout + TimeSpan.FromSeconds(2));
        foreach (var g in _gates)
        {
            g.Tell(new GetGateReceipt(l.Channel));
        }

        TryResume(l.Channel, lost);
    }

    private void OnReceipt(GateReceipt r)
    {
        if (_lost.TryGetValue(r.Channel, out var lost) && lost.Receipts[r.DeviceIndex] is null)
        {
            lost.Receipts[r.DeviceIndex] = new DeviceReceipt(r.Next, r.Held);
            TryResume(r.Channel, lost);
        }
    }

    private void TryResume(int channel, LostChannel lost)
    {
        if (lost.Resumed || lost.Receipts.Any(x => x is null))
        {
            return;
        }

        lost.Resumed = true;
        _request.Source.Tell(new ChannelResume(Id, channel, lost.Connection, lost.Delivered, lost.Receipts.Select(x => x!).ToArray()));
        _listener.Tell(new ReleaseChannel(Id, channel));
    }

    private sealed class LostChannel(ushort connection, uint delivered, DeviceReceipt?[] receipts)
    {
        public ushort Connection { get; } = connection;
        public uint Delivered { get; } = delivered;
        public DeviceReceipt?[] Receipts { get; } = receipts;
        public bool Resumed { get; set; }
    }

    private void TryVerify()
    {
        _log.Debug($"incoming {Id}: channels ended {_ended.Count}/{_channels.Length}, devices loaded {_loaded.Count(l => l is not null)}/{_loaded.Length}, ram digests {_ramDigests is not null}, source digests {_sourceDigests is not null}");
        if (_ended.Count < _channels.Length || _guest is null)
        {
            return;
        }

        if (_ramDigests is null)
        {
            // All RAM has arrived once every channel ended: hash what was not hashed yet while devices finish loading.
            if (!_verifying)
            {
                _verifying = true;
                _ramTracker!.FinishAsync().PipeTo(Self, success: d => new RamDigestsReady(d));
            }

            return;
        }

        if (_sourceDigests is null || _loaded.Any(l => l is null) || _startEpoch is null || _holdDone)
        {
            return;
        }

        var stats = Stats();
        var mismatches = new List<string>();
        for (var i = 0; i < _ramDigests.Length; i++)
        {
            if (i >= _sourceDigests.Ram.Count || _sourceDigests.Ram[i] != _ramDigests[i])
            {
                mismatches.Add($"RAM block {_guest.Blocks[i].Name}: destination {_ramDigests[i]}, source {(i < _sourceDigests.Ram.Count ? _sourceDigests.Ram[i] : "missing")}");
            }
        }

        for (var i = 0; i < _loaded.Length; i++)
        {
            var src = i < _sourceDigests.Devices.Count ? _sourceDigests.Devices[i] : "missing";
            if (src != _loaded[i]!.Digest)
            {
                mismatches.Add($"device {_guest.Devices[i].Identity.Id}: destination {_loaded[i]!.Digest}, source {src}");
            }
        }

        if (mismatches.Count > 0)
        {
            Fail("digest mismatch: " + string.Join("; ", mismatches));
            return;
        }

        ReportTraffic(final: true);
        Timers.Cancel("allocation");
        Timers.Cancel("digests");
        AnnounceVerified(stats);
    }

    private IncomingStats Stats() => new(
        _budget?.PeakBytes ?? 0,
        _budget?.BudgetBytes ?? 0,
        _loaded.Sum(l => l?.Stats.OutOfOrderChunks ?? 0),
        _loaded.Where(l => l is not null).Select(l => new DeviceIncomingStats(l!.Stats.Id, l.Stats.Chunks, l.Stats.Bytes, l.Stats.OutOfOrderChunks, l.Stats.PeakBufferedBytes, l.Stats.LoadMs)).ToArray(),
        _ramDigests ?? [],
        _loaded.Select(l => l?.Digest ?? "").ToArray(),
        _normalPages,
        _zeroPages,
        _allocation.AllocatedBytes(),
        _allocation.SteadyMiBPerGiB);

    private void Fail(string reason)
    {
        _log.Warning("incoming migration {0} of {1} failed: {2}", Id, _request.Spec.Id, reason);
        _request.Source.Tell(new IncomingFailed(Id, reason, Stats()));
        Discard(reason, tellSource: false);
    }

    private void Discard(string reason, bool tellSource)
    {
        if (tellSource)
        {
            _request.Source.Tell(new IncomingFailed(Id, reason, null));
        }

        Context.Parent.Tell(new IncomingDiscarded(_request.Spec.Id, Id, reason));
        Cleanup();
        Context.Stop(Self);
    }

    private void Cleanup()
    {
        _listener.Tell(new UnregisterIncoming(Id));
        foreach (var t in _barriers.Values.SelectMany(x => x.Values))
        {
            t.TrySetCanceled();
        }

        _barriers.Clear();
    }

    protected override void PostStop()
    {
        StopWatchingSourceNode();
        // Children (channels, gates, loaders) are stopped before this runs; the loaders' last device calls may
        // still be queued on the pool, which lets them finish before its threads exit.
        _pool?.Dispose();
        _ramTracker?.Dispose();
        if (_guest is not null)
        {
            foreach (var d in _guest.Devices)
            {
                try
                {
                    d.Reset();
                }
                catch (Exception)
                {
                    // best effort: the guest is discarded
                }
            }

            // Discarded: the memory goes to the node's pool (quarantined against stragglers). A loader still writing on
            // the worker pool holds no RAM; devices are managed objects.
            _guest.Release(NodeMemoryPool.Get(Context.System).Pool);
            _guest = null;
        }
    }

    private sealed record Allocated(GuestVm Guest) : INoSerializationVerificationNeeded;

    private sealed record AllocationFailed(string Reason) : INoSerializationVerificationNeeded;

    private sealed record RamDigestsReady(string[] Digests) : INoSerializationVerificationNeeded;

    private sealed record Timeout(string What) : INoSerializationVerificationNeeded;

    private sealed record SampleAllocation : INoSerializationVerificationNeeded
    {
        public static readonly SampleAllocation Instance = new();
    }
}
