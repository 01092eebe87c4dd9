using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

/// <summary>
/// The handlers the coordinator's states share: every pre-commit state's (<see cref="PreCommit"/>: cancel, failures of
/// channels, devices and the destination, the convergence commands and measurements, progress), the refusals of the
/// states after the stop (<see cref="TooLate"/>), and what a lost or failed channel means (<see cref="OnChannelLost"/>,
/// the grace of <see cref="OnChannelFailed"/>). Every failure ends through <see cref="SourceEnding.Abort"/>.
/// Threading: owned by the MigrationCoordinator; its handlers are registered into the coordinator's states and run on
/// its thread.
/// </summary>
internal sealed class CommonHandlers
{
    private readonly IActorContext _context;
    private readonly ITimerScheduler _timers;
    private readonly ICoordinatorStates _states;
    private readonly SourceRun _run;
    private readonly StopCopySequence _stop;
    private readonly SourceConvergence _convergence;
    private readonly SourceReporting _reporting;
    private readonly SourceProgress _progress;
    private readonly SourceEnding _ending;
    private string? _channelFailure;

    public CommonHandlers(IActorContext context, ITimerScheduler timers, ICoordinatorStates states, SourceRun run, StopCopySequence stop,
        SourceConvergence convergence, SourceReporting reporting, SourceProgress progress, SourceEnding ending)
    {
        _context = context;
        _timers = timers;
        _states = states;
        _run = run;
        _stop = stop;
        _convergence = convergence;
        _reporting = reporting;
        _progress = progress;
        _ending = ending;
    }

    /// <summary>
    /// Handlers every pre-commit state shares, after its own. <paramref name="switchoverOpen"/>: ForceSwitchover is
    /// accepted (before the switchover began); <paramref name="parametersOpen"/>: SetMigrationParameters applies (before
    /// the stop). Otherwise each gets an explicit too-late reply.
    /// </summary>
    public void PreCommit(bool switchoverOpen, bool parametersOpen)
    {
        Convergence(switchoverOpen, parametersOpen);
        _states.Receive<CancelMigration>(c =>
        {
            _context.Sender.Tell(new CancelAccepted(_run.Id));
            _ending.Abort("cancelled by operator", cancelled: true);
        });
        _states.Receive<ChannelFailed>(f => OnChannelFailed(f.Index, f.Reason));
        _states.Receive<ChannelFailureGrace>(_ => _ending.Abort(_channelFailure!, cancelled: false));
        // Outside precopy a lost connection is a failed channel (Precopy and SwitchoverAck handle the recoverable case first).
        _states.Receive<ChannelLost>(l => OnChannelFailed(l.Index, l.Reason));
        // The destination lost a channel outside precopy (before it, or after the stop): the migration cannot complete.
        _states.Receive<ChannelResume>(r => _ending.Abort($"destination lost channel {r.Channel} in phase {_run.PhaseName}", cancelled: false));
        _states.Receive<DeviceSaveFailed>(f => _ending.Abort($"device save failed: {f.Reason}", cancelled: false));
        _states.Receive<IncomingFailed>(f =>
        {
            _run.Stats.Incoming = f.Stats ?? _run.Stats.Incoming;
            _ending.Abort($"destination failed: {f.Reason}", cancelled: false, destinationKnowsAlready: true);
        });
        _states.Receive<PhaseTimeout>(t => _ending.Abort($"timed out in phase {t.Phase}", cancelled: false));
        // The destination's node left the cluster or its incoming migration stopped: end now, not at a channel timeout.
        _states.Receive<PeerLost>(OnPeerLost);
        _states.Receive<PeerGraceOver>(g => _ending.Abort(g.Why, cancelled: false));
        _states.Receive<DeviceCredit>(c => _run.Transfer?.OnCredit(c));
        _states.Receive<ProgressTick>(_ => _progress.Publish());
        _states.Receive<SubscribeMigration>(s => _reporting.Subscribe(s.Subscriber));
        _states.Receive<InjectChannelKill>(k =>
        {
            if (k.Channel < _run.Channels.Length)
            {
                _run.Channels[k.Channel].Tell(KillConnection.Instance);
            }
        });
        _states.Receive<JobDone>(_ => { });
        _states.Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        _states.Receive<RamDigestsReady>(_ => { });
        _states.Receive<GuestResumed>(_ => { });
        _states.Receive<IterationReceived>(_ => { });
        _states.ReceiveAny(m => _run.Log.Debug("migration {0}: ignored {1} in phase {2}", _run.Id, m.GetType().Name, _run.PhaseName));
    }

    /// <summary>
    /// Handlers of the convergence commands and measurements, shared by every pre-commit state; the state says whether
    /// a switchover may still be requested and whether the parameters may still change (each gets a too-late reply otherwise).
    /// </summary>
    private void Convergence(bool switchoverOpen, bool parametersOpen)
    {
        _states.Receive<SetMigrationParameters>(p =>
        {
            _context.Sender.Tell(_convergence.SetParameters(p, parametersOpen, _run.PhaseName, _run.Transfer, out var applied));
            if (applied)
            {
                _run.Pump();
            }
        });
        _states.Receive<ForceSwitchover>(f =>
        {
            if (!switchoverOpen)
            {
                _context.Sender.Tell(new CommandFailed($"migration {_run.Id} is in phase {_run.PhaseName}; the switchover has already begun", "too-late"));
                return;
            }

            _convergence.RequestSwitchover();
            _context.Sender.Tell(new SwitchoverAccepted(_run.Id, _run.PhaseName));
        });
        _states.Receive<PaceTick>(_ => _run.Pump());
        _states.Receive<DigestProbed>(_convergence.OnDigestProbed);
        _states.Receive<ActorIdentity>(_convergence.OnPong);
    }

    /// <summary>Answers of the states after the stop: too late to change anything (<paramref name="code"/> says why).</summary>
    public void TooLate(string code)
    {
        _states.Receive<SetMigrationParameters>(_ => _context.Sender.Tell(new CommandFailed($"migration {_run.Id} is {_run.PhaseName}; too late to change it", code)));
        _states.Receive<ForceSwitchover>(_ => _context.Sender.Tell(new CommandFailed($"migration {_run.Id} is {_run.PhaseName}; the switchover has already happened", code)));
    }

    /// <summary>
    /// Precopy and SwitchoverAck: a lost connection is recovered (<see cref="ChannelRecovery"/>) unless reconnect is off
    /// or a channel has already failed; in the other states it is a failed channel (<see cref="PreCommit"/>).
    /// </summary>
    public void OnChannelLost(ChannelLost l)
    {
        if (!_run.Settings.ReconnectEnabled || _channelFailure is not null)
        {
            OnChannelFailed(l.Index, l.Reason);
            return;
        }

        _run.Transfer!.Recovery.OnLost(l);
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
        _timers.StartSingleTimer("grace", ChannelFailureGrace.Instance, TimeSpan.FromSeconds(2));
        // The migration cannot succeed any more: a stopped guest is taken back (Abort) at the end of the grace; its
        // savers stop now.
        if (_stop.Stopped)
        {
            _run.TellSavers(AbortSave.Instance);
        }
    }

    /// <summary>
    /// Before the commit: the destination's node is gone (end now), or only its incoming migration stopped: that one
    /// usually says why (IncomingFailed, from it or its node), so give that a second to arrive before failing with
    /// the bare loss.
    /// </summary>
    private void OnPeerLost(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            _ending.Abort(lost.Why, cancelled: false, destinationKnowsAlready: true);
        }
        else
        {
            _timers.StartSingleTimer("peer-grace", new PeerGraceOver(lost.Why), TimeSpan.FromSeconds(1));
        }
    }
}
