namespace Migration.Actors.Source.Convergence;

/// <summary>One progress figure pair: percent done and the expected time left, in ms.</summary>
public readonly record struct ProgressFigures(double Percent, double EtaMs);

/// <summary>
/// Percent done and time left of one migration, made monotonic: the raw figures go backwards whenever the estimate
/// of what is left grows (a new iteration finds more dirty pages, a throttle step, a lost channel's pages marked dirty
/// again, device state that grew), and an operator reading them sees the migration go back. Percent never decreases
/// and stays below 100 until the migration completed; the time left never increases (it holds while the raw figure is
/// above it) and is 0 once the migration ended. Pure; owned by the coordinator and touched only on its thread.
/// </summary>
public sealed class ProgressTracker
{
    /// <summary>Percent shown while not completed at most (100 means done).</summary>
    public const double MaxRunningPercent = 99.9;

    private double _percent;
    private double _etaMs = double.PositiveInfinity;

    public ProgressFigures Last { get; private set; }

    /// <param name="sentBytes">Wire bytes sent so far (never decreases).</param>
    /// <param name="remainingBytes">Current estimate of the bytes still to send.</param>
    /// <param name="rateBytesPerMs">Current transfer rate (0 = unknown yet).</param>
    /// <param name="expectedDowntimeMs">The current downtime estimate (the stop phase is part of what is left).</param>
    /// <param name="ended">The migration ended (completed, failed or cancelled).</param>
    /// <param name="completed">It ended completed: percent 100.</param>
    public ProgressFigures Next(long sentBytes, long remainingBytes, double rateBytesPerMs, double expectedDowntimeMs, bool ended, bool completed)
    {
        if (completed)
        {
            _percent = 100;
        }
        else
        {
            var total = (double)Math.Max(0, sentBytes) + Math.Max(0, remainingBytes);
            var raw = total <= 0 ? 0 : Math.Min(MaxRunningPercent, 100.0 * Math.Max(0, sentBytes) / total);
            _percent = Math.Max(_percent, raw);
        }

        if (ended)
        {
            _etaMs = 0;
        }
        else if (rateBytesPerMs > 0)
        {
            var raw = (Math.Max(0, remainingBytes) / rateBytesPerMs) + Math.Max(0, expectedDowntimeMs);
            _etaMs = Math.Min(_etaMs, raw);
        }

        Last = new ProgressFigures(_percent, double.IsPositiveInfinity(_etaMs) ? -1 : _etaMs);
        return Last;
    }
}
