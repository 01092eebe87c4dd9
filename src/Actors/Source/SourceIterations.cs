using Akka.Actor;

namespace Migration.Actors.Source;

/// <summary>
/// The iteration loop of the source: beginning an iteration (its timeline point, the RAM digests' segments fetched
/// with its dirty bitmap, its RAM handed to the engine), and at its end (Sync on every channel) the decision: switch
/// over (SwitchoverAck: the drain of every device chunk sent begins) or run the next iteration, at once or after
/// min-iteration-time (timer "next-iteration"). The final iteration of the stopped guest begins here too.
/// Threading: owned by the MigrationCoordinator and called only on its thread, with its timers.
/// </summary>
internal sealed class SourceIterations
{
    private readonly ITimerScheduler _timers;
    private readonly ICoordinatorStates _states;
    private readonly SourceRun _run;
    private readonly SourceConvergence _convergence;
    private readonly SourceReporting _reporting;
    private double _iterationStartMs;

    public SourceIterations(ITimerScheduler timers, ICoordinatorStates states, SourceRun run, SourceConvergence convergence, SourceReporting reporting)
    {
        _timers = timers;
        _states = states;
        _run = run;
        _convergence = convergence;
        _reporting = reporting;
    }

    /// <summary>Begins the next iteration (precopy, or the final one after the stop) and pumps its first jobs.</summary>
    public void BeginIteration()
    {
        _iterationStartMs = _run.Clock.Elapsed.TotalMilliseconds;
        var transfer = _run.Transfer!;
        var iteration = transfer.BeginIteration();
        _reporting.Timeline.IterationStarted(_iterationStartMs, (int)iteration);
        _run.SegmentDigests!.OnIterationFetched(transfer.Scanner);
        transfer.StartRam();
        _run.Pump();
    }

    /// <summary>Every channel has sent Sync(k): switch over, or run the next iteration (after min-iteration-time).</summary>
    public void OnIterationSynced()
    {
        var iterationMs = _run.Clock.Elapsed.TotalMilliseconds - _iterationStartMs;
        var estimate = _convergence.Estimate(_run.Transfer!, _run.SegmentDigests, _run.SetupMs);
        if (_convergence.SwitchOverAtIterationEnd(_run.Iteration, iterationMs, estimate, _run.Incoming))
        {
            BeginSwitchover();
            return;
        }

        var wait = _run.Settings.MinIterationTime.TotalMilliseconds - iterationMs;
        if (wait > 1)
        {
            _timers.StartSingleTimer("next-iteration", NextIteration.Instance, TimeSpan.FromMilliseconds(wait));
        }
        else
        {
            BeginIteration();
        }
    }

    private void BeginSwitchover()
    {
        // Stop asking for precopy chunks; wait until every chunk sent so far is loaded (credited back):
        // the destination's credits are its switchover acknowledgement.
        _states.Enter(SourcePhase.SwitchoverAck);
        _run.Transfer!.BeginSwitchoverDrain();
        _timers.StartSingleTimer("phase", new PhaseTimeout("switchover-ack"), _run.Settings.VerifyTimeout);
        _run.Pump();
    }
}
