using Akka.Configuration;

namespace Migration.Actors.Settings;

/// <summary>
/// Auto-converge (QEMU's auto-converge capability with cpu-throttle-initial / cpu-throttle-increment /
/// max-cpu-throttle): when a precopy iteration does not shrink the remaining data enough, the guest's workload is
/// throttled, first by <see cref="InitialPercent"/>, then <see cref="IncrementPercent"/> more per such iteration, up
/// to <see cref="MaxPercent"/>, until the expected downtime fits the limit. Read once from
/// `migration.auto-converge` (hocon/migration.conf); immutable.
/// </summary>
public sealed record AutoConvergeSettings
{
    public bool Enabled { get; init; }
    public int InitialPercent { get; init; } = 20;
    public int IncrementPercent { get; init; } = 10;
    public int MaxPercent { get; init; } = 99;

    /// <summary>
    /// An iteration "did not shrink the dirty set enough" when the data left after it is more than this fraction of
    /// the data left after the previous one (QEMU throttles when the dirtied bytes exceed 50 % of those sent).
    /// </summary>
    public double ShrinkThreshold { get; init; } = 0.5;

    /// <summary>Non-converging iterations before the first throttle step (QEMU waits for two).</summary>
    public int TriggerIterations { get; init; } = 2;

    public static AutoConvergeSettings FromConfig(Config? c, AutoConvergeSettings fallback)
    {
        if (c is null || c.IsEmpty)
        {
            return fallback;
        }

        return new AutoConvergeSettings
        {
            Enabled = c.GetBoolean("enabled", fallback.Enabled),
            InitialPercent = c.GetInt("initial", fallback.InitialPercent),
            IncrementPercent = c.GetInt("increment", fallback.IncrementPercent),
            MaxPercent = c.GetInt("max", fallback.MaxPercent),
            ShrinkThreshold = c.GetDouble("shrink-threshold", fallback.ShrinkThreshold),
            TriggerIterations = c.GetInt("trigger-iterations", fallback.TriggerIterations),
        };
    }

    /// <summary>Throws ArgumentException naming the first bad value.</summary>
    public void Validate()
    {
        Check(InitialPercent is >= 1 and <= 99, $"auto-converge.initial = {InitialPercent}; expected 1..99");
        Check(IncrementPercent is >= 1 and <= 99, $"auto-converge.increment = {IncrementPercent}; expected 1..99");
        Check(MaxPercent >= InitialPercent && MaxPercent <= 99, $"auto-converge.max = {MaxPercent}; expected initial ({InitialPercent})..99");
        Check(ShrinkThreshold is > 0 and <= 1, $"auto-converge.shrink-threshold = {ShrinkThreshold}; expected > 0 and <= 1");
        Check(TriggerIterations is >= 1 and <= 100, $"auto-converge.trigger-iterations = {TriggerIterations}; expected 1..100");
    }

    private static void Check(bool ok, string message)
    {
        if (!ok)
        {
            throw new ArgumentException("invalid migration setting: " + message);
        }
    }
}
