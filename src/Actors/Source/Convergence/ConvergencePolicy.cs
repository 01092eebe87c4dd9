using Migration.Actors.Settings;

namespace Migration.Actors.Source.Convergence;

/// <summary>Why the source stopped the guest (the report's switchoverReason).</summary>
public static class SwitchoverReason
{
    /// <summary>The expected downtime fit the limit.</summary>
    public const string Converged = "converged";

    /// <summary>The operator asked for it (`migration switchover ID`), whatever the estimate.</summary>
    public const string ForcedByOperator = "forced-by-operator";

    /// <summary>max-iterations precopy iterations did not converge.</summary>
    public const string MaxIterations = "max-iterations";
}

/// <summary>What to do at the end of a precopy iteration.</summary>
/// <param name="Switchover">Stop the guest now (with <paramref name="Reason"/>), else run another iteration.</param>
/// <param name="ThrottlePercent">The workload throttle to apply from now (0 = none).</param>
/// <param name="ThrottleChanged">The throttle stepped at this iteration.</param>
public readonly record struct ConvergenceDecision(bool Switchover, string? Reason, int ThrottlePercent, bool ThrottleChanged);

/// <summary>
/// Decides, at every iteration boundary, whether to switch over and how hard to throttle the guest
/// (docs/architecture.md "Convergence"). Pure and deterministic: the coordinator feeds it each iteration's
/// estimate and applies the decision. Owned by the coordinator; touched only on its thread.
/// Order of the checks: an operator's forced switchover, then a fitting estimate, then max-iterations; otherwise
/// auto-converge (if on) counts iterations that did not shrink the data left by <see cref="AutoConvergeSettings.ShrinkThreshold"/>
/// and steps the throttle every <see cref="AutoConvergeSettings.TriggerIterations"/> of them: first to the initial
/// percentage, then by the increment, at most to the maximum (QEMU's cpu-throttle-initial/-increment, max-cpu-throttle).
/// </summary>
public sealed class ConvergencePolicy(AutoConvergeSettings autoConverge, int maxIterations)
{
    private long _previousRemaining = -1;
    private int _notConverging;

    public AutoConvergeSettings AutoConverge { get; private set; } = autoConverge;
    public int MaxIterations { get; } = maxIterations;

    /// <summary>The throttle the guest runs at now, percent (0 = not throttled).</summary>
    public int ThrottlePercent { get; private set; }

    /// <summary>The highest throttle applied during the migration (the report's maxThrottlePercent).</summary>
    public int MaxThrottlePercent { get; private set; }

    /// <summary>Set by the operator; honoured at the next iteration boundary.</summary>
    public bool SwitchoverRequested { get; private set; }

    public void RequestSwitchover() => SwitchoverRequested = true;

    /// <summary>Turns auto-converge on or off while migrating; off lifts the throttle at once (returns the new throttle).</summary>
    public int SetAutoConverge(bool enabled)
    {
        AutoConverge = AutoConverge with { Enabled = enabled };
        if (!enabled)
        {
            ThrottlePercent = 0;
            _notConverging = 0;
        }

        return ThrottlePercent;
    }

    /// <param name="iteration">The iteration that just ended (1-based).</param>
    /// <param name="remainingBytes">Data left to send after it.</param>
    /// <param name="expectedDowntimeMs">The expected downtime of switching over now.</param>
    /// <param name="downtimeLimitMs">The limit (may change while migrating).</param>
    public ConvergenceDecision OnIterationEnd(uint iteration, long remainingBytes, double expectedDowntimeMs, double downtimeLimitMs)
    {
        var previous = _previousRemaining;
        _previousRemaining = remainingBytes;
        if (SwitchoverRequested)
        {
            return new ConvergenceDecision(true, SwitchoverReason.ForcedByOperator, ThrottlePercent, false);
        }

        if (expectedDowntimeMs <= downtimeLimitMs)
        {
            return new ConvergenceDecision(true, SwitchoverReason.Converged, ThrottlePercent, false);
        }

        if (iteration >= MaxIterations)
        {
            return new ConvergenceDecision(true, SwitchoverReason.MaxIterations, ThrottlePercent, false);
        }

        if (!AutoConverge.Enabled || previous < 0 || remainingBytes <= AutoConverge.ShrinkThreshold * previous)
        {
            return new ConvergenceDecision(false, null, ThrottlePercent, false);
        }

        if (++_notConverging < AutoConverge.TriggerIterations || ThrottlePercent >= AutoConverge.MaxPercent)
        {
            return new ConvergenceDecision(false, null, ThrottlePercent, false);
        }

        _notConverging = 0;
        ThrottlePercent = ThrottlePercent == 0
            ? AutoConverge.InitialPercent
            : Math.Min(AutoConverge.MaxPercent, ThrottlePercent + AutoConverge.IncrementPercent);
        MaxThrottlePercent = Math.Max(MaxThrottlePercent, ThrottlePercent);
        return new ConvergenceDecision(false, null, ThrottlePercent, true);
    }
}
