using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Guest;

namespace Migration.Actors.Source;

/// <summary>
/// The source side of one migration: the phase state machine
/// Preparing -> Connecting -> Precopy(1..k) -> SwitchoverAck -> StopCopy -> Verifying -> Committing -> Ended(completed),
/// or Ended(failed/cancelled) from any phase before commit, in which case the guest keeps running here. Each phase is
/// one Become state, entered only through <see cref="Enter"/> (<see cref="SourcePhase"/>); this class holds the states
/// and the steps between phases, the plain collaborators it owns hold the rest (docs/architecture.md, "Source
/// coordinator structure"): <see cref="SourceSetup"/>, <see cref="SourceTransfer"/>, <see cref="StopCopySequence"/>,
/// <see cref="SourceCommit"/>, <see cref="CommonHandlers"/>, <see cref="SourceEnding"/> (also the ending states).
/// Owns everything below it: the send channels, the device savers, the migration's worker pool, the RAM scanner.
/// Every state answers CancelMigration and failures the same way (<see cref="SourceEnding.Abort"/>).
/// All state is touched only on this actor's thread.
/// </summary>
public sealed class MigrationCoordinator : ReceiveActor, IWithTimers, ISourceTransferEvents, ICoordinatorStates
{
    private readonly SourceRun _run;
    private readonly SourceReporting _reporting;
    private readonly SourceConvergence _convergence;
    private readonly DeviceAbortWait _aborts = new();
    private readonly SourceOwnership _ownership;
    private readonly SourceProgress _progress;
    private readonly SourceSetup _setup;
    private readonly StopCopySequence _stop;
    private readonly SourceEnding _ending;
    private readonly SourceCommit _commit;
    private readonly CommonHandlers _common;
    private readonly SourceIterations _iterations;
    private readonly HashSet<int> _readyChannels = [];

    public MigrationCoordinator(Guid id, GuestVm guest, string destinationNode, string sourceNode, MigrationSettings settings, IActorRef? subscriber,
        Transport.Channels.ChannelTls? tls = null)
    {
        _run = new SourceRun(id, guest, destinationNode, sourceNode, settings, tls, Context.GetLogger());
        _reporting = new SourceReporting(id, guest, settings, _run.Stats, _run.Clock);
        _ownership = new SourceOwnership(Context, guest.Id, sourceNode, destinationNode, OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout);
        _convergence = new SourceConvergence(id, guest, settings, _run.Stats, _run.Clock, StopPhaseHistory.Get(Context.System), _reporting.Timeline, _run.Log, Self);
        _progress = new SourceProgress(_run, _convergence, _reporting);
        _setup = new SourceSetup(Context, _run, _ownership);
        _stop = new StopCopySequence(_run);
        _ending = new SourceEnding(Context, Timers, this, _run, _stop, _ownership, _aborts, _convergence, _reporting, _progress);
        _commit = new SourceCommit(Context, Timers, _run, _stop, _ownership, _convergence, _ending);
        _common = new CommonHandlers(Context, Timers, this, _run, _stop, _convergence, _reporting, _progress, _ending);
        _iterations = new SourceIterations(Timers, this, _run, _convergence, _reporting);
        if (subscriber is not null)
        {
            _reporting.Subscribe(subscriber);
        }

        Become(Preparing);
    }

    /// <summary>Enters a phase: sets it and becomes its state together (the only place either changes for a phase).</summary>
    private void Enter(SourcePhase phase)
    {
        _run.Phase = phase;
        Become(phase switch
        {
            SourcePhase.Setup => Preparing,
            SourcePhase.Connecting => Connecting,
            SourcePhase.Precopy => Precopy,
            SourcePhase.SwitchoverAck => SwitchoverAck,
            SourcePhase.StopCopy => StopCopy,
            SourcePhase.Verifying => Verifying,
            SourcePhase.Committing => Committing,
            SourcePhase.Ended => () => _ending.Ended(_common),
            _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, "not a source phase"),
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(Guid id, GuestVm guest, string destinationNode, string sourceNode, MigrationSettings settings, IActorRef? subscriber,
        Transport.Channels.ChannelTls? tls = null) =>
        Akka.Actor.Props.Create(() => new MigrationCoordinator(id, guest, destinationNode, sourceNode, settings, subscriber, tls));

    protected override void PreStart()
    {
        var node = Context.ActorSelection($"{_run.DestinationNode.TrimEnd('/')}/user/node");
        node.Tell(new PrepareIncoming(_run.Id, _run.Guest.Spec, MigrationParameters.From(_run.Settings), Self));
        Timers.StartSingleTimer("phase", new PhaseTimeout("prepare"), _run.Settings.PrepareTimeout);
        Timers.StartPeriodicTimer("progress", ProgressTick.Instance, _run.Settings.ProgressInterval);
        _ownership.WatchDestinationNode();
    }

    protected override void PostStop()
    {
        // Savers run their last device calls on the pool; Dispose lets queued items finish, then threads exit.
        _run.Pool?.Dispose();
        // Not after the hand-over: the guest then belongs to the destination.
        if (_run.Pool is not null && !_run.CommitSent)
        {
            _aborts.ReturnOnceDrained(_run.Pool, _run.Guest.Devices, _run.Log, _run.Id);
        }
    }

    // ---------------------------------------------------------------- the phases' states

    private void Preparing()
    {
        Receive<PrepareAck>(ack =>
        {
            if (_setup.OnPrepareAck(ack) is { } problem)
            {
                _ending.Abort(problem, cancelled: false);
                return;
            }

            Timers.StartSingleTimer("phase", new PhaseTimeout("connect"), _run.Settings.ConnectTimeout + TimeSpan.FromSeconds(5));
            Enter(SourcePhase.Connecting);
        });
        Receive<PrepareRefused>(r => _ending.Abort($"destination refused: {r.Reason}", cancelled: false));
        Receive<CommandFailed>(r => _ending.Abort($"destination refused: {r.Reason}", cancelled: false));
        _common.PreCommit(switchoverOpen: true, parametersOpen: true);
    }

    private void Connecting()
    {
        Receive<ChannelReady>(r =>
        {
            _run.Links.Connected(r.Index, r.Connection);
            _readyChannels.Add(r.Index);
            if (_readyChannels.Count == _run.Channels.Length)
            {
                StartPrecopy();
            }
        });
        _common.PreCommit(switchoverOpen: true, parametersOpen: true);
    }

    /// <summary>Iterations of precopy: the guest runs, RAM and device precopy data stream; a lost connection is recovered.</summary>
    private void Precopy()
    {
        Receive<ChannelLost>(_common.OnChannelLost);
        Receive<NextIteration>(_ => _iterations.BeginIteration());
        TransferHandlers();
        _common.PreCommit(switchoverOpen: true, parametersOpen: true);
    }

    /// <summary>Waiting until every device chunk sent is loaded (credited back); a lost connection is still recovered.</summary>
    private void SwitchoverAck()
    {
        Receive<ChannelLost>(_common.OnChannelLost);
        TransferHandlers();
        _common.PreCommit(switchoverOpen: false, parametersOpen: true);
    }

    /// <summary>The guest is paused: the final RAM and device state go out, then End; a lost connection fails (PreCommit).</summary>
    private void StopCopy()
    {
        Receive<RamDigestsReady>(d =>
        {
            _stop.Mark("ram digests");
            _convergence.OnSourceDigestDone();
            _stop.OnRamDigests(d.Digests);
            TrySendDigests();
        });
        TransferHandlers();
        _common.PreCommit(switchoverOpen: false, parametersOpen: false);
    }

    /// <summary>Handlers of the three phases that move data (Precopy, SwitchoverAck, StopCopy), before PreCommit's.</summary>
    private void TransferHandlers()
    {
        Receive<JobDone>(d => _run.Transfer!.OnJobDone(d));
        Receive<ChannelReady>(r => _run.Transfer!.Recovery.OnBack(r));
        Receive<ChannelResume>(r => _run.Transfer!.Recovery.OnResume(r));
        Receive<IterationReceived>(i => _run.Transfer!.OnIterationReceived(i));
        Receive<ReconnectTimedOut>(t => _ending.Abort(
            $"channel {t.Channel} lost its connection and did not come back within {_run.Settings.ChannelReconnectTimeout.TotalSeconds:0.#} s (channel-reconnect-timeout)",
            cancelled: false));
        Receive<ChunkReady>(r => _run.Transfer!.OnChunkReady(r));
        Receive<NoChunkNow>(n => _run.Transfer!.OnNoChunk(n));
        Receive<RepollDevices>(_ => _run.Transfer!.OnRepoll());
        Receive<DeviceSaved>(s =>
        {
            _stop.OnDeviceSaved(s);
            _run.Pump();
        });
    }

    private void Verifying()
    {
        Receive<DestinationVerified>(v =>
        {
            _commit.HandOver(v);
            Enter(SourcePhase.Committing);
        });
        Receive<JobDone>(_ => { });
        Receive<RamDigestsReady>(_ => { });
        _common.PreCommit(switchoverOpen: false, parametersOpen: false);
    }

    private void Committing()
    {
        Receive<GuestResumed>(r =>
        {
            _stop.Mark("resumed");
            _convergence.OnResumeConfirmed();
            var downtime = _run.Clock.Elapsed.TotalMilliseconds - _stop.StoppedAtMs;
            _reporting.Timeline.Resumed(_stop.StoppedAtMs + downtime);
            _ending.Finish("completed", null, downtime);
        });
        Receive<CancelMigration>(c => Sender.Tell(new CommandFailed($"migration {_run.Id} is committing; too late to cancel", "too-late")));
        _common.TooLate("too-late");
        // The stopped guest stays here until the record decides (SourceCommit.OnRecord): the destination resumes
        // it only after a majority confirmed its epoch; if the destination is gone first, this side takes it back.
        Receive<PeerLost>(_commit.OnPeerLost);
        Receive<ClaimResult>(_commit.OnRecord);
        Receive<HoldCommitOver>(_ => _commit.SendHeldCommit());
        Receive<PhaseTimeout>(_ => _commit.ReadRecord());
        Receive<ProgressTick>(_ => _progress.Publish());
        Receive<SubscribeMigration>(s => _reporting.Subscribe(s.Subscriber));
        ReceiveAny(_ => { });
    }

    // ---------------------------------------------------------------- the steps between phases

    /// <summary>Every channel is connected: the savers and the transfer engine start, then iteration 1.</summary>
    private void StartPrecopy()
    {
        Timers.Cancel("phase");
        _run.SetupMs = _run.Clock.Elapsed.TotalMilliseconds;
        _stop.Begin(_run.Guest.Devices.Count);
        _setup.StartTransfer(Timers, this);
        Enter(SourcePhase.Precopy);
        _convergence.OnPrecopyStarting(_run.Transfer!, _run.Incoming);
        // The precopy faults fire once, before iteration 1's first job reaches a channel.
        _run.InjectFaults("precopy");
        _iterations.BeginIteration();
    }

    private void StopGuest()
    {
        Timers.Cancel("phase");
        _stop.StopGuest();
        var transfer = _run.Transfer!;
        _progress.RecordTimelineSample(_progress.RemainingDirtyBytes(), force: true);
        _reporting.Timeline.Stopped(_stop.StoppedAtMs);
        _convergence.OnGuestStopping(transfer);
        Enter(SourcePhase.StopCopy);
        _run.TellSavers(BeginStopCopySave.Instance);
        transfer.BeginFinal();
        Timers.StartSingleTimer("phase", new PhaseTimeout("stop-copy"), _run.Settings.VerifyTimeout);
        _iterations.BeginIteration();
        // After the final bitmap sync of the paused guest: only the segments it marked are hashed now.
        _run.SegmentDigests!.ComputeFinalAsync().PipeTo(Self, success: d => new RamDigestsReady(d));
        _run.InjectFaults("stopcopy");
        _stop.Mark($"stopped; final iteration has {transfer.Scanner.RemainingPages} pages; device info {string.Join(",", transfer.Info.Select(i => i.StopCopyRemaining))}");
    }

    /// <summary>StopCopy: once End went out everywhere, every device is saved and the RAM digests are in, verify.</summary>
    private void TrySendDigests()
    {
        if (_stop.TryDigests() is not { } digests)
        {
            return;
        }

        _run.Incoming.Tell(digests);
        Timers.StartSingleTimer("phase", new PhaseTimeout("verify"), _run.Settings.VerifyTimeout);
        Enter(SourcePhase.Verifying);
    }

    // ---------------------------------------------------------------- transfer events (SourceTransfer, on this thread)

    /// <summary>Every channel has sent Sync(k): decide whether to switch over (SourceConvergence).</summary>
    void ISourceTransferEvents.IterationSynced() => _iterations.OnIterationSynced();

    void ISourceTransferEvents.EndSent(int channel, bool everyChannel)
    {
        _stop.Mark($"end sent on {channel}");
        if (everyChannel)
        {
            _convergence.OnStopCopySent(_stop.StoppedAtMs);
        }

        TrySendDigests();
    }

    /// <summary>Switchover acknowledged (every chunk sent is loaded, every channel up): stop the guest.</summary>
    void ISourceTransferEvents.DrainedForSwitchover() => StopGuest();

    void ISourceTransferEvents.ProtocolViolation(string what) => _ending.Abort($"destination protocol violation: {what}", cancelled: false);

    void ISourceTransferEvents.ChannelReconnecting(int channel, string reason) =>
        _reporting.Timeline.Reconnect(_run.Clock.Elapsed.TotalMilliseconds, channel, reason);

    void ISourceTransferEvents.Mark(string what) => _stop.Mark(what);

    // ---------------------------------------------------------------- the behaviour table, for CommonHandlers and SourceEnding

    void ICoordinatorStates.Receive<T>(Action<T> handler) => Receive(handler);

    void ICoordinatorStates.ReceiveAny(Action<object> handler) => ReceiveAny(handler);

    void ICoordinatorStates.Become(Action state) => Become(state);

    void ICoordinatorStates.Enter(SourcePhase phase) => Enter(phase);
}
