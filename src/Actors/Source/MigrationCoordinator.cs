using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Infrastructure;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Guest;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;

namespace Migration.Actors.Source;

/// <summary>
/// The source side of one migration: the phase state machine
/// Preparing -> Connecting -> Precopy(1..k) -> SwitchoverAck -> StopCopy -> Verifying -> Committing -> Ended(completed),
/// or Ended(failed/cancelled) from any phase before commit, in which case the guest keeps running here. Each phase is
/// one Become state, entered only through <see cref="Enter"/> (<see cref="SourcePhase"/>).
/// Owns everything below it: the send channels, the device savers, the migration's worker pool, the RAM scanner.
/// Every state answers CancelMigration and failures the same way (<see cref="Abort"/>).
/// All state is touched only on this actor's thread.
/// </summary>
public sealed class MigrationCoordinator : ReceiveActor, IWithTimers, ISourceTransferEvents
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Guid _id;
    private readonly GuestVm _guest;
    private readonly MigrationSettings _settings;
    private readonly string _destinationNode;
    private readonly string _sourceNode;
    private readonly Transport.Channels.ChannelTls? _tls;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly MigrationStats _stats = new();
    private readonly SourceReporting _reporting;
    private readonly SourceConvergence _convergence;
    private readonly DeviceAbortWait _aborts = new();
    private readonly SourceOwnership _ownership;
    private IActorRef _incoming = ActorRefs.Nobody;
    private PrepareAck? _ack;
    private WorkerPool? _pool;
    private SourceTransfer? _transfer;
    private ChannelLinks _links = new(0);
    private SourceRamDigests? _segmentDigests;
    private IActorRef[] _channels = [];
    private IActorRef[] _savers = [];
    private readonly HashSet<int> _readyChannels = [];
    private string[]? _ramDigests;
    private string[] _deviceDigests = [];
    private DeviceSaved?[] _saved = [];
    private SourcePhase _phase = SourcePhase.Setup;
    private string _endStatus = "";
    private double _iterationStartMs;
    private double _setupMs;
    private double _stopMs = -1;
    private bool _commitSent;
    private string? _channelFailure;

    public MigrationCoordinator(Guid id, GuestVm guest, string destinationNode, string sourceNode, MigrationSettings settings, IActorRef? subscriber,
        Transport.Channels.ChannelTls? tls = null)
    {
        _tls = tls;
        _id = id;
        _guest = guest;
        _destinationNode = destinationNode;
        _sourceNode = sourceNode;
        _settings = settings;
        _reporting = new SourceReporting(id, guest, settings, _stats, _clock);
        _ownership = new SourceOwnership(Context, guest.Id, sourceNode, destinationNode, OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout);
        _convergence = new SourceConvergence(id, guest, settings, _stats, _clock, StopPhaseHistory.Get(Context.System), _reporting.Timeline, _log, Self);
        if (subscriber is not null)
        {
            _reporting.Subscribe(subscriber);
        }

        Become(Preparing);
    }

    /// <summary>The phase's user-visible name (progress, reports, replies): the state's, never compared.</summary>
    private string PhaseName => _phase.Name(_endStatus);

    /// <summary>The iteration being sent (0 before precopy).</summary>
    private uint Iteration => _transfer?.Iteration ?? 0;

    /// <summary>Enters a phase: sets it and becomes its state together (the only place either changes for a phase).</summary>
    private void Enter(SourcePhase phase)
    {
        _phase = phase;
        Become(phase switch
        {
            SourcePhase.Setup => Preparing,
            SourcePhase.Connecting => Connecting,
            SourcePhase.Precopy => Precopy,
            SourcePhase.SwitchoverAck => SwitchoverAck,
            SourcePhase.StopCopy => StopCopy,
            SourcePhase.Verifying => Verifying,
            SourcePhase.Committing => Committing,
            SourcePhase.Ended => Ended,
            _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, "not a source phase"),
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(Guid id, GuestVm guest, string destinationNode, string sourceNode, MigrationSettings settings, IActorRef? subscriber,
        Transport.Channels.ChannelTls? tls = null) =>
        Akka.Actor.Props.Create(() => new MigrationCoordinator(id, guest, destinationNode, sourceNode, settings, subscriber, tls));

    protected override void PreStart()
    {
        var node = Context.ActorSelection($"{_destinationNode.TrimEnd('/')}/user/node");
        node.Tell(new PrepareIncoming(_id, _guest.Spec, MigrationParameters.From(_settings), Self));
        Timers.StartSingleTimer("phase", new PhaseTimeout("prepare"), _settings.PrepareTimeout);
        Timers.StartPeriodicTimer("progress", ProgressTick.Instance, _settings.ProgressInterval);
        _ownership.WatchDestinationNode();
    }

    // ---------------------------------------------------------------- states

    private void Preparing()
    {
        Receive<PrepareAck>(OnPrepared);
        Receive<PrepareRefused>(r => Abort($"destination refused: {r.Reason}", cancelled: false));
        Receive<CommandFailed>(r => Abort($"destination refused: {r.Reason}", cancelled: false));
        Common(switchoverOpen: true, parametersOpen: true);
    }

    private void Connecting()
    {
        Receive<ChannelReady>(r =>
        {
            _links.Connected(r.Index, r.Connection);
            _readyChannels.Add(r.Index);
            if (_readyChannels.Count == _channels.Length)
            {
                StartPrecopy();
            }
        });
        Common(switchoverOpen: true, parametersOpen: true);
    }

    /// <summary>Iterations of precopy: the guest runs, RAM and device precopy data stream; a lost connection is recovered.</summary>
    private void Precopy()
    {
        Receive<ChannelLost>(OnChannelLost);
        Receive<NextIteration>(_ => BeginIteration());
        TransferHandlers();
        Common(switchoverOpen: true, parametersOpen: true);
    }

    /// <summary>Waiting until every device chunk sent is loaded (credited back); a lost connection is still recovered.</summary>
    private void SwitchoverAck()
    {
        Receive<ChannelLost>(OnChannelLost);
        TransferHandlers();
        Common(switchoverOpen: false, parametersOpen: true);
    }

    /// <summary>The guest is paused: the final RAM and device state go out, then End; a lost connection fails (Common).</summary>
    private void StopCopy()
    {
        Receive<RamDigestsReady>(d =>
        {
            Mark("ram digests");
            _convergence.OnSourceDigestDone();
            _ramDigests = d.Digests;
            TrySendDigests();
        });
        TransferHandlers();
        Common(switchoverOpen: false, parametersOpen: false);
    }

    /// <summary>Handlers of the three phases that move data (Precopy, SwitchoverAck, StopCopy), before Common's.</summary>
    private void TransferHandlers()
    {
        Receive<JobDone>(d => _transfer!.OnJobDone(d));
        Receive<ChannelReady>(r => _transfer!.Recovery.OnBack(r));
        Receive<ChannelResume>(r => _transfer!.Recovery.OnResume(r));
        Receive<IterationReceived>(i => _transfer!.OnIterationReceived(i));
        Receive<ReconnectTimedOut>(t => Abort(
            $"channel {t.Channel} lost its connection and did not come back within {_settings.ChannelReconnectTimeout.TotalSeconds:0.#} s (channel-reconnect-timeout)",
            cancelled: false));
        Receive<ChunkReady>(r => _transfer!.OnChunkReady(r));
        Receive<NoChunkNow>(n => _transfer!.OnNoChunk(n));
        Receive<RepollDevices>(_ => _transfer!.OnRepoll());
        Receive<DeviceSaved>(s =>
        {
            _saved[s.DeviceIndex] = s;
            Mark($"device {s.DeviceIndex} saved");
            _deviceDigests[s.DeviceIndex] = s.Digest;
            Pump();
        });
    }

    private void Verifying()
    {
        Receive<DestinationVerified>(v =>
        {
            _stats.Incoming = v.Stats;
            Mark("verified");
            // Release ownership first: from here on the guest belongs to the destination.
            Context.Parent.Tell(new GuestHandedOver(_guest.Id, _id));
            _commitSent = true;
            if (_settings.Inject.Any(f => f.Kind == FaultInjection.DropCommit))
            {
                // The destination must learn the hand-over by asking this node (QueryHandover).
                _log.Warning("migration {0}: injecting drop-commit: CommitMigration not sent", _id);
            }
            else if (_settings.Inject.FirstOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "commit") is { } hold)
            {
                // Widens the committing window for fault drills: the destination waits, verified, for the commit.
                Timers.StartSingleTimer("hold-commit", HoldCommitOver.Instance, TimeSpan.FromMilliseconds(hold.Value));
            }
            else
            {
                _incoming.Tell(new CommitMigration(_id));
                _convergence.OnCommitSent();
            }

            // The destination waits commit-timeout for CommitMigration, then asks this node every second (a lost
            // commit): twice the timeout leaves it time to resume through that path and still confirm.
            Timers.StartSingleTimer("phase", new PhaseTimeout("commit"), _settings.CommitTimeout * 2);
            Enter(SourcePhase.Committing);
        });
        Receive<JobDone>(_ => { });
        Receive<RamDigestsReady>(_ => { });
        Common(switchoverOpen: false, parametersOpen: false);
    }

    private void Committing()
    {
        Receive<GuestResumed>(r =>
        {
            Mark("resumed");
            _convergence.OnResumeConfirmed();
            var downtime = _clock.Elapsed.TotalMilliseconds - _stopMs;
            _reporting.Timeline.Resumed(_stopMs + downtime);
            Finish("completed", null, downtime);
        });
        Receive<CancelMigration>(c => Sender.Tell(new CommandFailed($"migration {_id} is committing; too late to cancel", "too-late")));
        LateConvergenceHandlers("too-late");
        // The stopped guest stays here until the record decides (OnCommitRecord): the destination resumes
        // it only after a majority confirmed its epoch; if the destination is gone first, this side takes it back.
        Receive<PeerLost>(OnPeerLostCommitting);
        Receive<ClaimResult>(OnCommitRecord);
        Receive<HoldCommitOver>(_ => _incoming.Tell(new CommitMigration(_id)));
        Receive<PhaseTimeout>(_ => _ownership.StartClaim(ClaimKind.Read));
        Receive<ProgressTick>(_ => PublishProgress());
        Receive<SubscribeMigration>(OnSubscribe);
        ReceiveAny(_ => { });
    }

    /// <summary>
    /// Handlers every pre-commit state shares, after its own. <paramref name="switchoverOpen"/>: ForceSwitchover is
    /// accepted (before the switchover began); <paramref name="parametersOpen"/>: SetMigrationParameters applies (before
    /// the stop). Otherwise each gets an explicit too-late reply.
    /// </summary>
    private void Common(bool switchoverOpen, bool parametersOpen)
    {
        ConvergenceHandlers(switchoverOpen, parametersOpen);
        Receive<CancelMigration>(c =>
        {
            Sender.Tell(new CancelAccepted(_id));
            Abort("cancelled by operator", cancelled: true);
        });
        Receive<ChannelFailed>(f => OnChannelFailed(f.Index, f.Reason));
        Receive<ChannelFailureGrace>(_ => Abort(_channelFailure!, cancelled: false));
        // Outside precopy a lost connection is a failed channel (Precopy and SwitchoverAck handle the recoverable case first).
        Receive<ChannelLost>(l => OnChannelFailed(l.Index, l.Reason));
        // The destination lost a channel outside precopy (before it, or after the stop): the migration cannot complete.
        Receive<ChannelResume>(r => Abort($"destination lost channel {r.Channel} in phase {PhaseName}", cancelled: false));
        Receive<DeviceSaveFailed>(f => Abort($"device save failed: {f.Reason}", cancelled: false));
        Receive<IncomingFailed>(f =>
        {
            _stats.Incoming = f.Stats ?? _stats.Incoming;
            Abort($"destination failed: {f.Reason}", cancelled: false, destinationKnowsAlready: true);
        });
        Receive<PhaseTimeout>(t => Abort($"timed out in phase {t.Phase}", cancelled: false));
        // The destination's node left the cluster or its incoming migration stopped: end now, not at a channel timeout.
        Receive<PeerLost>(OnPeerLost);
        Receive<PeerGraceOver>(g => Abort(g.Why, cancelled: false));
        Receive<DeviceCredit>(c => _transfer?.OnCredit(c));
        Receive<ProgressTick>(_ => PublishProgress());
        Receive<SubscribeMigration>(OnSubscribe);
        Receive<InjectChannelKill>(k =>
        {
            if (k.Channel < _channels.Length)
            {
                _channels[k.Channel].Tell(KillConnection.Instance);
            }
        });
        Receive<JobDone>(_ => { });
        Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        Receive<RamDigestsReady>(_ => { });
        Receive<GuestResumed>(_ => { });
        Receive<IterationReceived>(_ => { });
        ReceiveAny(m => _log.Debug("migration {0}: ignored {1} in phase {2}", _id, m.GetType().Name, PhaseName));
    }

    /// <summary>
    /// A channel is gone for good. The destination usually closes the channels because it detected something (a
    /// violation, a bad checksum): give its IncomingFailed, which says why, a moment to arrive before failing with the
    /// socket error alone.
    /// </summary>
    private void OnChannelFailed(int channel, string reason)
    {
        if (_channelFailure is not null)
        {
            return;
        }

        _channelFailure = $"channel {channel} failed: {reason}";
        Timers.StartSingleTimer("grace", ChannelFailureGrace.Instance, TimeSpan.FromSeconds(2));
        // The migration cannot succeed any more: a stopped guest is taken back (Abort) at the end of the grace; its
        // savers stop now.
        if (_stopMs >= 0)
        {
            foreach (var s in _savers)
            {
                s.Tell(AbortSave.Instance);
            }
        }
    }

    /// <summary>
    /// Precopy and SwitchoverAck: a lost connection is recovered (<see cref="ChannelRecovery"/>) unless reconnect is off
    /// or a channel has already failed; in the other states it is a failed channel (Common).
    /// </summary>
    private void OnChannelLost(ChannelLost l)
    {
        if (!_settings.ReconnectEnabled || _channelFailure is not null)
        {
            OnChannelFailed(l.Index, l.Reason);
            return;
        }

        _transfer!.Recovery.OnLost(l);
    }

    // ---------------------------------------------------------------- setup

    private void OnPrepared(PrepareAck ack)
    {
        if (PeerReplies.PrepareAckProblem(ack, _id) is { } bad)
        {
            Abort($"destination protocol violation: {bad}", cancelled: false);
            return;
        }

        if (ack.DeviceBufferBudget < _settings.ChunkSize)
        {
            Abort($"destination budget {ack.DeviceBufferBudget} bytes is smaller than chunk-size {_settings.ChunkSize}", cancelled: false);
            return;
        }

        if (ack.Tls && _tls is null)
        {
            _incoming = ack.Incoming;
            Abort($"destination requires TLS on the channels but {_sourceNode} has no certificate (migration.tls)", cancelled: false);
            return;
        }

        _ack = ack;
        _incoming = ack.Incoming;
        _ownership.WatchDestination(ack.Incoming);
        _channels = new IActorRef[_settings.Channels];
        _links = new ChannelLinks(_channels.Length);
        for (var i = 0; i < _channels.Length; i++)
        {
            var spec = new ChannelSpec(i, _channels.Length, _id, ack.Host, ack.Port, ack.Token, _settings.ConnectTimeout,
                _settings.Codec, _settings.CodecLevel, _settings.ZeroPageDetection, _settings.PacketPages, _settings.ChannelQueueDepth,
                ack.Tls ? _tls : null);
            _channels[i] = Context.ActorOf(SendChannel.Props(spec, Self), $"channel-{i}");
        }

        Timers.StartSingleTimer("phase", new PhaseTimeout("connect"), _settings.ConnectTimeout + TimeSpan.FromSeconds(5));
        Enter(SourcePhase.Connecting);
    }

    private void StartPrecopy()
    {
        Timers.Cancel("phase");
        _setupMs = _clock.Elapsed.TotalMilliseconds;
        var devices = _guest.Devices;
        var workers = _settings.DeviceWorkers > 0 ? _settings.DeviceWorkers : Math.Clamp(devices.Count, 1, Environment.ProcessorCount);
        // The migration's own worker pool for device saving: created now, disposed when the migration ends.
        _pool = new WorkerPool($"save-{_id.ToString()[..8]}", workers, capacity: Math.Max(16, devices.Count * 4));
        _savers = devices.Select((d, i) => Context.ActorOf(
            DeviceSaver.Props(i, d, _pool, _settings.ChunkSize, _settings.DeviceReadAhead, ChunkBufferPool.Shared), $"saver-{i}")).ToArray();
        _saved = new DeviceSaved?[devices.Count];
        _deviceDigests = new string[devices.Count];
        var scanner = new RamScanner(_guest.Blocks, _settings.PacketPages);
        _segmentDigests = new SourceRamDigests(_guest.Blocks);
        var credit = new DeviceCreditPool(_ack!.DeviceBufferBudget, _settings.ChunkSize, devices.Count);
        var state = new TransferState(_channels, _savers, devices, scanner, credit, _settings.ChannelQueueDepth, _settings.DeviceReadAhead)
        {
            DeviceRequestsEnabled = true,
        };
        _transfer = new SourceTransfer(_id, state, _links, _channels, _settings, _stats, Timers, _log, this);
        foreach (var s in _savers)
        {
            s.Tell(BeginPrecopySave.Instance);
        }

        scanner.MarkAllDirty();
        Enter(SourcePhase.Precopy);
        _convergence.OnPrecopyStarting(_transfer, _incoming);
        // The precopy faults fire once, before iteration 1's first job reaches a channel.
        InjectFaults("precopy");
        BeginIteration();
    }

    // ---------------------------------------------------------------- precopy

    /// <summary>Fires the injected faults of a phase ("precopy" at iteration 1, "stopcopy" after the stop).</summary>
    private void InjectFaults(string phase)
    {
        foreach (var f in _settings.Inject.Where(f => f.Phase == phase))
        {
            _log.Warning("migration {0}: injecting {1} in {2}", _id, f.Kind, phase);
            var channel = _channels[Math.Min(f.Channel, _channels.Length - 1)];
            channel.Tell(f.Kind == FaultInjection.DropChannel ? KillConnection.Instance : CorruptNextPacket.Instance);
        }
    }

    private void BeginIteration()
    {
        _iterationStartMs = _clock.Elapsed.TotalMilliseconds;
        var iteration = _transfer!.BeginIteration();
        _reporting.Timeline.IterationStarted(_iterationStartMs, (int)iteration);
        _segmentDigests!.OnIterationFetched(_transfer.Scanner);
        _transfer.StartRam();
        Pump();
    }

    /// <summary>Hands out jobs (the transfer engine raises what follows in its stage); nothing to pump before precopy.</summary>
    private void Pump() => _transfer?.Pump();

    // ---------------------------------------------------------------- transfer events (SourceTransfer, on this thread)

    /// <summary>Every channel has sent Sync(k): decide whether to switch over (SourceConvergence).</summary>
    void ISourceTransferEvents.IterationSynced() => DecideAtIterationEnd(_clock.Elapsed.TotalMilliseconds - _iterationStartMs);

    void ISourceTransferEvents.EndSent(int channel, bool everyChannel)
    {
        Mark($"end sent on {channel}");
        if (everyChannel)
        {
            _convergence.OnStopCopySent(_stopMs);
        }

        TrySendDigests();
    }

    /// <summary>Switchover acknowledged (every chunk sent is loaded, every channel up): stop the guest.</summary>
    void ISourceTransferEvents.DrainedForSwitchover() => StopGuest();

    void ISourceTransferEvents.ProtocolViolation(string what) => Abort($"destination protocol violation: {what}", cancelled: false);

    void ISourceTransferEvents.ChannelReconnecting(int channel, string reason) => _reporting.Timeline.Reconnect(_clock.Elapsed.TotalMilliseconds, channel, reason);

    void ISourceTransferEvents.Mark(string what) => Mark(what);

    private (long RemainingBytes, double DowntimeMs) Estimate()
    {
        var e = _convergence.Estimate(_transfer!, _segmentDigests, _setupMs);
        return (e.RemainingBytes, e.TotalMs);
    }

    /// <summary>Every channel has sent Sync(k): switch over, or run the next iteration (after min-iteration-time).</summary>
    private void DecideAtIterationEnd(double iterationMs)
    {
        var estimate = _convergence.Estimate(_transfer!, _segmentDigests, _setupMs);
        if (_convergence.SwitchOverAtIterationEnd(Iteration, iterationMs, estimate, _incoming))
        {
            BeginSwitchover();
            return;
        }

        var wait = _settings.MinIterationTime.TotalMilliseconds - iterationMs;
        if (wait > 1)
        {
            Timers.StartSingleTimer("next-iteration", NextIteration.Instance, TimeSpan.FromMilliseconds(wait));
        }
        else
        {
            BeginIteration();
        }
    }

    // ---------------------------------------------------------------- convergence commands (SourceConvergence)

    /// <summary>
    /// Handlers of the convergence commands and measurements, shared by every pre-commit state; the state says whether
    /// a switchover may still be requested and whether the parameters may still change (each gets a too-late reply otherwise).
    /// </summary>
    private void ConvergenceHandlers(bool switchoverOpen, bool parametersOpen)
    {
        Receive<SetMigrationParameters>(p =>
        {
            Sender.Tell(_convergence.SetParameters(p, parametersOpen, PhaseName, _transfer, out var applied));
            if (applied)
            {
                Pump();
            }
        });
        Receive<ForceSwitchover>(f =>
        {
            if (!switchoverOpen)
            {
                Sender.Tell(new CommandFailed($"migration {_id} is in phase {PhaseName}; the switchover has already begun", "too-late"));
                return;
            }

            _convergence.RequestSwitchover();
            Sender.Tell(new SwitchoverAccepted(_id, PhaseName));
        });
        Receive<PaceTick>(_ => Pump());
        Receive<DigestProbed>(_convergence.OnDigestProbed);
        Receive<ActorIdentity>(_convergence.OnPong);
    }

    /// <summary>Answers of the states after the stop: too late to change anything.</summary>
    private void LateConvergenceHandlers(string code)
    {
        Receive<SetMigrationParameters>(_ => Sender.Tell(new CommandFailed($"migration {_id} is {PhaseName}; too late to change it", code)));
        Receive<ForceSwitchover>(_ => Sender.Tell(new CommandFailed($"migration {_id} is {PhaseName}; the switchover has already happened", code)));
    }

    // ---------------------------------------------------------------- switchover

    private void BeginSwitchover()
    {
        // Stop asking for precopy chunks; wait until every chunk sent so far is loaded (credited back):
        // the destination's credits are its switchover acknowledgement.
        Enter(SourcePhase.SwitchoverAck);
        _transfer!.BeginSwitchoverDrain();
        Timers.StartSingleTimer("phase", new PhaseTimeout("switchover-ack"), _settings.VerifyTimeout);
        Pump();
    }

    private void StopGuest()
    {
        Timers.Cancel("phase");
        _guest.Workload.Pause();
        _stopMs = _clock.Elapsed.TotalMilliseconds;
        RecordTimelineSample(RemainingDirtyBytes(), force: true);
        _reporting.Timeline.Stopped(_stopMs);
        _convergence.OnGuestStopping(_transfer!);
        Enter(SourcePhase.StopCopy);
        foreach (var s in _savers)
        {
            s.Tell(BeginStopCopySave.Instance);
        }

        _transfer!.BeginFinal();
        Timers.StartSingleTimer("phase", new PhaseTimeout("stop-copy"), _settings.VerifyTimeout);
        BeginIteration();
        // After the final bitmap sync of the paused guest: only the segments it marked are hashed now.
        _segmentDigests!.ComputeFinalAsync().PipeTo(Self, success: d => new RamDigestsReady(d));
        InjectFaults("stopcopy");
        Mark($"stopped; final iteration has {_transfer.Scanner.RemainingPages} pages; device info {string.Join(",", _transfer.Info.Select(i => i.StopCopyRemaining))}");
    }

    /// <summary>Debug timeline of the stop-copy phase (akka.loglevel = DEBUG shows it).</summary>
    private void Mark(string what)
    {
        if (_log.IsDebugEnabled)
        {
            _log.Debug($"migration {_id}: T+{_clock.Elapsed.TotalMilliseconds - _stopMs:0.0} ms after stop: {what}");
        }
    }

    private void TrySendDigests()
    {
        // Called only in StopCopy (its RamDigestsReady, and the End JobDones that come only after the stop); once the
        // digests are sent the state is Verifying, which ignores both.
        if (!_transfer!.AllEnded || _ramDigests is null || _saved.Any(s => s is null))
        {
            return;
        }

        Mark("digests sent");
        var cpu = _guest.Workload.Position;
        _incoming.Tell(new SourceDigests(_id, _ramDigests, _deviceDigests, _saved.Select(s => s!.Chunks).ToArray(), cpu.Block, cpu.Page));
        Timers.StartSingleTimer("phase", new PhaseTimeout("verify"), _settings.VerifyTimeout);
        Enter(SourcePhase.Verifying);
    }

    // ---------------------------------------------------------------- end

    private void Abort(string reason, bool cancelled, bool destinationKnowsAlready = false)
    {
        if (!destinationKnowsAlready && !_incoming.IsNobody())
        {
            _incoming.Tell(new AbortIncoming(_id, reason));
        }
        else if (!destinationKnowsAlready)
        {
            Context.ActorSelection($"{_destinationNode.TrimEnd('/')}/user/node").Tell(new AbortIncoming(_id, reason));
        }

        foreach (var s in _savers)
        {
            s.Tell(AbortSave.Instance);
        }

        _transfer?.DropAll();
        if (_stopMs >= 0)
        {
            // Paused for stop-copy: it runs here again only once a majority confirmed the take-back.
            TakeBack(reason, cancelled);
            return;
        }

        _log.Warning("migration {0} of {1}: {2}; the guest keeps running on {3}", _id, _guest.Id, reason, _sourceNode);
        EndAfterDeviceAborts(cancelled ? "cancelled" : "failed", reason);
    }

    private void Finish(string status, string? error, double downtimeMs)
    {
        Timers.CancelAll();
        RecordTimelineSample(0, force: true);
        _convergence.LiftThrottle();
        var report = _reporting.Report(Now(), new SourceOutcome(status, error, downtimeMs, _sourceNode, _destinationNode, _saved, _ramDigests,
            _convergence.Forced, _convergence.SwitchoverReason, _convergence.SwitchoverEstimate, _convergence.MaxThrottlePercent,
            _convergence.PrecopyThroughputMiBps(_setupMs), _convergence.MaxBandwidth,
            _transfer?.Recovery.ResentPages ?? 0, _transfer?.Recovery.ResentChunks ?? 0));
        _endStatus = status;
        Enter(SourcePhase.Ended);
        PublishProgress();
        // The node first: a subscriber that queries the node after MigrationFinished then sees the updated registry.
        Context.Parent.Tell(new MigrationEnded(_guest.Id, _id, report, HandedOver: _commitSent));
        foreach (var s in _reporting.Subscribers)
        {
            s.Tell(new MigrationFinished(report));
        }
        foreach (var c in _channels)
        {
            Context.Stop(c);
        }

        foreach (var s in _savers)
        {
            Context.Stop(s);
        }
    }

    private void Ended()
    {
        Receive<SubscribeMigration>(OnSubscribe);
        Receive<CancelMigration>(_ => Sender.Tell(new CommandFailed($"migration {_id} has ended", "ended")));
        LateConvergenceHandlers("ended");
        Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        ReceiveAny(_ => { });
    }

    // ---------------------------------------------------------------- ownership of the stopped guest (SourceOwnership)

    // docs/architecture.md, "Ownership rules". Once the guest is paused for stop-copy, the source runs it again only
    // after a majority confirmed its take-back in the ownership record; after DestinationVerified it keeps the stopped
    // guest (never disposes it) until the destination confirms its resume, or the record says the destination holds
    // it, or the destination is gone and the source took it back.

    /// <summary>How long the guest has been paused (0 before the stop): the report's downtime, also on failure.</summary>
    private double PausedMs => _stopMs >= 0 ? _clock.Elapsed.TotalMilliseconds - _stopMs : 0;

    /// <summary>
    /// Before the commit: the destination's node is gone (end now), or only its incoming migration stopped: that one
    /// usually says why (IncomingFailed, from it or its node), so give that a second to arrive before failing with
    /// the bare loss.
    /// </summary>
    private void OnPeerLost(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            Abort(lost.Why, cancelled: false, destinationKnowsAlready: true);
        }
        else
        {
            Timers.StartSingleTimer("peer-grace", new PeerGraceOver(lost.Why), TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>The stopped guest cannot be handed over: take it back through the record, then resume it and finish.</summary>
    private void TakeBack(string reason, bool cancelled)
    {
        if (_commitSent && _ownership.TakeBackReason is null)
        {
            // Committing: the savers left the devices stopped (Abort already told them otherwise): back to running state.
            foreach (var s in _savers)
            {
                s.Tell(AbortSave.Instance);
            }
        }

        _ownership.NoteTakeBack(reason, cancelled);
        _ownership.StartClaim(ClaimKind.TakeBack);
        Become(TakingBack);
    }

    /// <summary>Ending (not a phase: progress keeps the phase it was entered from): the take-back claim until it wins.</summary>
    private void TakingBack()
    {
        Receive<ClaimResult>(r =>
        {
            _ownership.ClaimAnswered();
            if (r.Outcome == ClaimOutcome.Won)
            {
                _commitSent = false; // the guest is ours again: the node puts it back in its registry
                _guest.Workload.Resume();
                _log.Warning("migration {0} of {1}: {2}; took the guest back ({3}) and resumed it on {4}", _id, _guest.Id, _ownership.TakeBackReason, r.Current, _sourceNode);
                // Devices back to running before the node frees the guest for a new migration (EndAfterDeviceAborts);
                // AbortSave again: a take-back after the verification never sent it, and a saver confirms a repeat once more.
                foreach (var s in _savers)
                {
                    s.Tell(AbortSave.Instance);
                }

                EndAfterDeviceAborts(_ownership.TakeBackCancelled ? "cancelled" : "failed",
                    $"{_ownership.TakeBackReason}; the guest resumed on {_sourceNode} (ownership {r.Current})");
                return;
            }

            _log.Error("migration {0} of {1}: {2}; cannot take the stopped guest back yet ({3}); it stays paused here and the claim is retried",
                _id, _guest.Id, _ownership.TakeBackReason, r.Detail);
            Timers.StartSingleTimer("claim", RetryClaim.Instance, TimeSpan.FromSeconds(1));
        });
        Receive<RetryClaim>(_ => _ownership.StartClaim(ClaimKind.TakeBack));
        Receive<CancelMigration>(_ => Sender.Tell(new CommandFailed($"migration {_id} is already ending: {_ownership.TakeBackReason}", "ending")));
        Receive<ProgressTick>(_ => PublishProgress());
        Receive<SubscribeMigration>(OnSubscribe);
        Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        ReceiveAny(_ => { });
    }

    /// <summary>
    /// Committing, the destination is gone before it confirmed the resume (its node removed, or its incoming migration
    /// stopped). If its node is alive and the record names it, it runs the guest: done. Otherwise take the guest back.
    /// </summary>
    private void OnPeerLostCommitting(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            TakeBack($"{lost.Why} after it verified the guest, before it confirmed the resume", cancelled: false);
            return;
        }

        _ownership.PendingPeerLoss = lost;
        _ownership.StartClaim(ClaimKind.Read);
    }

    /// <summary>A read of the record while committing (the destination's actor stopped, or the commit timed out).</summary>
    private void OnCommitRecord(ClaimResult r)
    {
        _ownership.ClaimAnswered();
        if (_ownership.NamesDestination(r))
        {
            Mark("record names the destination");
            Finish("completed", null, PausedMs);
            return;
        }

        if (_ownership.NamesThirdNode(r))
        {
            _log.Warning("migration {0} of {1}: the record names a third node ({2}): the destination resumed the guest and it moved on; the stopped copy here is stale",
                _id, _guest.Id, r.Current);
            Finish("completed", null, PausedMs);
            return;
        }

        if (_ownership.PendingPeerLoss is { } lost && r.Outcome == ClaimOutcome.Won)
        {
            TakeBack($"{lost.Why} without resuming the guest (the record is {r.Current})", cancelled: false);
            return;
        }

        // No majority, or the destination is alive and has not claimed yet: keep the stopped guest and wait.
        _log.Warning("migration {0} of {1}: destination has not confirmed the resume; record: {2} ({3}); keeping the stopped guest and waiting",
            _id, _guest.Id, r.Current, r.Detail);
        Timers.StartSingleTimer("phase", new PhaseTimeout("commit"), _settings.CommitTimeout);
    }

    protected override void PostStop()
    {
        // Savers run their last device calls on the pool; Dispose lets queued items finish, then threads exit.
        _pool?.Dispose();
        // Not after the hand-over: the guest then belongs to the destination.
        if (_pool is not null && !_commitSent)
        {
            _aborts.ReturnOnceDrained(_pool, _guest.Devices, _log, _id);
        }
    }

    private void OnSubscribe(SubscribeMigration s) => _reporting.Subscribe(s.Subscriber);

    // ---------------------------------------------------------------- the end of an aborted migration (DeviceAbortWait)

    /// <summary>
    /// Contract: an aborted migration reports its end (MigrationEnded, which frees the guest for a new migration on the
    /// node) only after every device saver answered SaveAborted, that is after each device's call in flight ended and
    /// its device is back in RUNNING, or after migration.device-abort-timeout, in which case the report names the
    /// devices that did not confirm. The savers are stopped only then (Finish): a Stop would overtake the AbortSave.
    /// AbortSave was already sent to every saver (<see cref="Abort"/>).
    /// </summary>
    private void EndAfterDeviceAborts(string status, string reason)
    {
        // The guest was paused until Abort resumed it (just before this): that is the downtime it experienced.
        _aborts.Begin(status, reason, PausedMs);
        if (_savers.Length == 0)
        {
            Finish(status, reason, _aborts.DowntimeMs);
            return;
        }

        Timers.CancelAll();
        Timers.StartSingleTimer("device-abort", DeviceAbortTimedOut.Instance, _settings.DeviceAbortTimeout);
        Become(AwaitingDeviceAborts);
    }

    /// <summary>Ending (not a phase: progress keeps the phase it was entered from): waits for the devices' SaveAborted.</summary>
    private void AwaitingDeviceAborts()
    {
        Receive<SaveAborted>(a =>
        {
            if (!_aborts.Confirm(a.DeviceIndex, _savers.Length, a.Error))
            {
                return; // a confirmation of an earlier AbortSave (OnChannelFailed) counts once
            }

            if (a.Error is not null)
            {
                _log.Error("migration {0} of {1}: {2}", _id, _guest.Id, a.Error);
            }

            if (_aborts.Confirmed == _savers.Length)
            {
                Finish(_aborts.Status, _aborts.ReasonWithDeviceErrors, _aborts.DowntimeMs);
            }
        });
        Receive<DeviceAbortTimedOut>(_ =>
        {
            var error = _aborts.TimedOut(_guest.Devices, _savers.Length, _settings.DeviceAbortTimeout);
            _log.Error("migration {0} of {1}: {2}", _id, _guest.Id, error);
            Finish(_aborts.Status, _aborts.ReasonWithDeviceErrors, _aborts.DowntimeMs);
        });
        Receive<CancelMigration>(_ => Sender.Tell(new CommandFailed($"migration {_id} is ending ({_aborts.Status}); its devices are returning to running", "ended")));
        Receive<SubscribeMigration>(OnSubscribe);
        Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        ReceiveAny(_ => { });
    }

    // ---------------------------------------------------------------- progress and the timeline (SourceReporting)

    /// <summary>The figures of the moment for progress, the timeline and the report.</summary>
    private SourceNow Now() => new(PhaseName, _phase == SourcePhase.Ended, _phase == SourcePhase.Ended && _endStatus == "completed",
        (int)Iteration, _setupMs, _ack?.DeviceBufferBudget ?? _settings.DeviceBufferBudget, _convergence.ThrottlePercent,
        _transfer?.Recovery.Reconnects ?? 0);

    private void PublishProgress()
    {
        long remaining = 0;
        var expected = _stats.LastExpectedDowntimeMs;
        if (_transfer is not null && _phase.SendsRam())
        {
            var e = Estimate();
            remaining = e.RemainingBytes;
            expected = e.DowntimeMs;
        }

        _reporting.Publish(Now(), remaining, expected, RemainingDirtyBytes());
    }

    /// <summary>Dirty guest RAM not yet sent, in bytes; 0 outside the phases that send RAM.</summary>
    private long RemainingDirtyBytes() => _transfer is not null && _phase.SendsRam() ? _transfer.DirtyBytes : 0;

    /// <summary>Samples the transfer now (every progress tick; forced at the stop and at the end so they are never thinned out).</summary>
    private void RecordTimelineSample(long remainingDirtyBytes, bool force = false) => _reporting.Sample(Now(), remainingDirtyBytes, force);

    private sealed record PhaseTimeout(string Phase) : INoSerializationVerificationNeeded;

    private sealed record ProgressTick : INoSerializationVerificationNeeded
    {
        public static readonly ProgressTick Instance = new();
    }

    private sealed record NextIteration : INoSerializationVerificationNeeded
    {
        public static readonly NextIteration Instance = new();
    }

    private sealed record RamDigestsReady(string[] Digests) : INoSerializationVerificationNeeded;


    private sealed record ChannelFailureGrace : INoSerializationVerificationNeeded
    {
        public static readonly ChannelFailureGrace Instance = new();
    }

    private sealed record HoldCommitOver : INoSerializationVerificationNeeded
    {
        public static readonly HoldCommitOver Instance = new();
    }

    private sealed record PeerGraceOver(string Why) : INoSerializationVerificationNeeded;

    private sealed record RetryClaim : INoSerializationVerificationNeeded
    {
        public static readonly RetryClaim Instance = new();
    }

    private sealed record DeviceAbortTimedOut : INoSerializationVerificationNeeded
    {
        public static readonly DeviceAbortTimedOut Instance = new();
    }
}

/// <summary>Coordinator -> node: the destination verified; ownership moves to it.</summary>
public sealed record GuestHandedOver(string VmId, Guid MigrationId) : INoSerializationVerificationNeeded;

/// <summary>Coordinator -> node: the migration ended (HandedOver = the guest now belongs to the destination).</summary>
public sealed record MigrationEnded(string VmId, Guid MigrationId, MigrationReport Report, bool HandedOver) : INoSerializationVerificationNeeded;

/// <summary>Fault injection (tests, CLI): kill one channel's connection.</summary>
public sealed record InjectChannelKill(Guid MigrationId, int Channel) : Messages.IMigrationMessage;
