using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;

namespace Migration.Actors.Source;

/// <summary>
/// How a source migration ends: <see cref="Abort"/> (cancelled or failed before the hand-over: the destination is told,
/// the savers abort, a paused guest is taken back), the take-back of a stopped guest through the ownership record
/// (<see cref="TakeBack"/>, state TakingBack), the wait for the devices' return to running (state AwaitingDeviceAborts,
/// <see cref="DeviceAbortWait"/>), and <see cref="Finish"/> (the report, the node, the subscribers, the children
/// stopped; phase Ended). TakingBack and AwaitingDeviceAborts are not phases: progress keeps the phase they were entered
/// from. docs/architecture.md, "Ownership rules" and "Aborting: the devices go back to running first".
/// Threading: owned by the MigrationCoordinator and called only on its thread, with its actor context and timers; its
/// states are the coordinator's (built through <see cref="ICoordinatorStates"/>).
/// </summary>
internal sealed class SourceEnding
{
    private readonly IActorContext _context;
    private readonly ITimerScheduler _timers;
    private readonly ICoordinatorStates _states;
    private readonly SourceRun _run;
    private readonly StopCopySequence _stop;
    private readonly SourceOwnership _ownership;
    private readonly DeviceAbortWait _aborts;
    private readonly SourceConvergence _convergence;
    private readonly SourceReporting _reporting;
    private readonly SourceProgress _progress;

    public SourceEnding(IActorContext context, ITimerScheduler timers, ICoordinatorStates states, SourceRun run, StopCopySequence stop,
        SourceOwnership ownership, DeviceAbortWait aborts, SourceConvergence convergence, SourceReporting reporting, SourceProgress progress)
    {
        _context = context;
        _timers = timers;
        _states = states;
        _run = run;
        _stop = stop;
        _ownership = ownership;
        _aborts = aborts;
        _convergence = convergence;
        _reporting = reporting;
        _progress = progress;
    }

    /// <summary>
    /// Ends the migration before the hand-over. The destination is told (unless it reported the failure itself), every
    /// saver aborts, the transfer drops what it holds; a guest paused for stop-copy runs here again only once a majority
    /// confirmed the take-back, a running one keeps running.
    /// </summary>
    public void Abort(string reason, bool cancelled, bool destinationKnowsAlready = false)
    {
        if (!destinationKnowsAlready && !_run.Incoming.IsNobody())
        {
            _run.Incoming.Tell(new AbortIncoming(_run.Id, reason));
        }
        else if (!destinationKnowsAlready)
        {
            _context.ActorSelection($"{_run.DestinationNode.TrimEnd('/')}/user/node").Tell(new AbortIncoming(_run.Id, reason));
        }

        _run.TellSavers(AbortSave.Instance);
        _run.Transfer?.DropAll();
        if (_stop.Stopped)
        {
            // Paused for stop-copy: it runs here again only once a majority confirmed the take-back.
            TakeBack(reason, cancelled);
            return;
        }

        _run.Log.Warning("migration {0} of {1}: {2}; the guest keeps running on {3}", _run.Id, _run.Guest.Id, reason, _run.SourceNode);
        EndAfterDeviceAborts(cancelled ? "cancelled" : "failed", reason);
    }

    /// <summary>The stopped guest cannot be handed over: take it back through the record, then resume it and finish.</summary>
    public void TakeBack(string reason, bool cancelled)
    {
        if (_run.CommitSent && _ownership.TakeBackReason is null)
        {
            // Committing: the savers left the devices stopped (Abort already told them otherwise): back to running state.
            _run.TellSavers(AbortSave.Instance);
        }

        _ownership.NoteTakeBack(reason, cancelled);
        _ownership.StartClaim(ClaimKind.TakeBack);
        _states.Become(TakingBack);
    }

    /// <summary>Ending (not a phase: progress keeps the phase it was entered from): the take-back claim until it wins.</summary>
    private void TakingBack()
    {
        _states.Receive<ClaimResult>(r =>
        {
            _ownership.ClaimAnswered();
            if (r.Outcome == ClaimOutcome.Won)
            {
                _run.CommitSent = false; // the guest is ours again: the node puts it back in its registry
                _run.Guest.Workload.Resume();
                _run.Log.Warning("migration {0} of {1}: {2}; took the guest back ({3}) and resumed it on {4}", _run.Id, _run.Guest.Id, _ownership.TakeBackReason, r.Current, _run.SourceNode);
                // Devices back to running before the node frees the guest for a new migration (EndAfterDeviceAborts);
                // AbortSave again: a take-back after the verification never sent it, and a saver confirms a repeat once more.
                _run.TellSavers(AbortSave.Instance);
                EndAfterDeviceAborts(_ownership.TakeBackCancelled ? "cancelled" : "failed",
                    $"{_ownership.TakeBackReason}; the guest resumed on {_run.SourceNode} (ownership {r.Current})");
                return;
            }

            _run.Log.Error("migration {0} of {1}: {2}; cannot take the stopped guest back yet ({3}); it stays paused here and the claim is retried",
                _run.Id, _run.Guest.Id, _ownership.TakeBackReason, r.Detail);
            _timers.StartSingleTimer("claim", RetryClaim.Instance, TimeSpan.FromSeconds(1));
        });
        _states.Receive<RetryClaim>(_ => _ownership.StartClaim(ClaimKind.TakeBack));
        _states.Receive<CancelMigration>(_ => _context.Sender.Tell(new CommandFailed($"migration {_run.Id} is already ending: {_ownership.TakeBackReason}", "ending")));
        _states.Receive<ProgressTick>(_ => _progress.Publish());
        _states.Receive<SubscribeMigration>(s => _reporting.Subscribe(s.Subscriber));
        _states.Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        _states.ReceiveAny(_ => { });
    }

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
        _aborts.Begin(status, reason, _stop.PausedMs);
        if (_run.Savers.Length == 0)
        {
            Finish(status, reason, _aborts.DowntimeMs);
            return;
        }

        _timers.CancelAll();
        _timers.StartSingleTimer("device-abort", DeviceAbortTimedOut.Instance, _run.Settings.DeviceAbortTimeout);
        _states.Become(AwaitingDeviceAborts);
    }

    /// <summary>Ending (not a phase: progress keeps the phase it was entered from): waits for the devices' SaveAborted.</summary>
    private void AwaitingDeviceAborts()
    {
        _states.Receive<SaveAborted>(a =>
        {
            if (!_aborts.Confirm(a.DeviceIndex, _run.Savers.Length, a.Error))
            {
                return; // a confirmation of an earlier AbortSave (OnChannelFailed) counts once
            }

            if (a.Error is not null)
            {
                _run.Log.Error("migration {0} of {1}: {2}", _run.Id, _run.Guest.Id, a.Error);
            }

            if (_aborts.Confirmed == _run.Savers.Length)
            {
                Finish(_aborts.Status, _aborts.ReasonWithDeviceErrors, _aborts.DowntimeMs);
            }
        });
        _states.Receive<DeviceAbortTimedOut>(_ =>
        {
            var error = _aborts.TimedOut(_run.Guest.Devices, _run.Savers.Length, _run.Settings.DeviceAbortTimeout);
            _run.Log.Error("migration {0} of {1}: {2}", _run.Id, _run.Guest.Id, error);
            Finish(_aborts.Status, _aborts.ReasonWithDeviceErrors, _aborts.DowntimeMs);
        });
        _states.Receive<CancelMigration>(_ => _context.Sender.Tell(new CommandFailed($"migration {_run.Id} is ending ({_aborts.Status}); its devices are returning to running", "ended")));
        _states.Receive<SubscribeMigration>(s => _reporting.Subscribe(s.Subscriber));
        _states.Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        _states.ReceiveAny(_ => { });
    }

    /// <summary>
    /// The end: the final report, phase Ended, the last progress; then the node (MigrationEnded), the subscribers
    /// (MigrationFinished), and the channels and savers are stopped.
    /// </summary>
    public void Finish(string status, string? error, double downtimeMs)
    {
        _timers.CancelAll();
        _progress.RecordTimelineSample(0, force: true);
        _convergence.LiftThrottle();
        var transfer = _run.Transfer;
        var report = _reporting.Report(_progress.Now(), new SourceOutcome(status, error, downtimeMs, _run.SourceNode, _run.DestinationNode,
            _stop.Saved, _stop.RamDigests, _convergence.Forced, _convergence.SwitchoverReason, _convergence.SwitchoverEstimate,
            _convergence.MaxThrottlePercent, _convergence.PrecopyThroughputMiBps(_run.SetupMs), _convergence.MaxBandwidth,
            transfer?.Recovery.ResentPages ?? 0, transfer?.Recovery.ResentChunks ?? 0));
        _run.EndStatus = status;
        _states.Enter(SourcePhase.Ended);
        _progress.Publish();
        // The node first: a subscriber that queries the node after MigrationFinished then sees the updated registry.
        _context.Parent.Tell(new MigrationEnded(_run.Guest.Id, _run.Id, report, HandedOver: _run.CommitSent));
        foreach (var s in _reporting.Subscribers)
        {
            s.Tell(new MigrationFinished(report));
        }

        foreach (var c in _run.Channels)
        {
            _context.Stop(c);
        }

        foreach (var s in _run.Savers)
        {
            _context.Stop(s);
        }
    }

    /// <summary>Phase Ended: only subscriptions (they get the final progress) and explicit refusals.</summary>
    public void Ended(CommonHandlers common)
    {
        _states.Receive<SubscribeMigration>(s => _reporting.Subscribe(s.Subscriber));
        _states.Receive<CancelMigration>(_ => _context.Sender.Tell(new CommandFailed($"migration {_run.Id} has ended", "ended")));
        common.TooLate("ended");
        _states.Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        _states.ReceiveAny(_ => { });
    }
}
