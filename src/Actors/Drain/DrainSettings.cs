using Akka.Configuration;

namespace Migration.Actors.Drain;

/// <summary>
/// Tunables of host drains, read once from hocon/migration.conf (`migration.max-parallel-migrations`,
/// `migration.drain`) by the drain coordinator and by the CLI (for the default of --max-parallel).
/// </summary>
public sealed record DrainSettings
{
    /// <summary>Cluster-wide cap on migrations that drains run at once (all drains together).</summary>
    public int MaxParallelMigrations { get; init; } = 5;

    /// <summary>Default of `drain --max-parallel`: migrations at once per drained (source) node.</summary>
    public int MaxParallelPerNode { get; init; } = 2;

    /// <summary>How often the coordinator re-checks its drains: places waiting guests, re-subscribes to migrations.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromSeconds(2);

    public static DrainSettings FromConfig(Config config)
    {
        var d = new DrainSettings();
        var s = new DrainSettings
        {
            MaxParallelMigrations = config.GetInt("migration.max-parallel-migrations", d.MaxParallelMigrations),
            MaxParallelPerNode = config.GetInt("migration.drain.max-parallel", d.MaxParallelPerNode),
            CheckInterval = config.GetTimeSpan("migration.drain.check-interval", d.CheckInterval),
        };
        if (s.MaxParallelMigrations is < 1 or > 1000)
        {
            throw new ConfigurationException($"migration.max-parallel-migrations = {s.MaxParallelMigrations}; expected 1..1000");
        }

        if (s.MaxParallelPerNode is < 1 or > 64)
        {
            throw new ConfigurationException($"migration.drain.max-parallel = {s.MaxParallelPerNode}; expected 1..64");
        }

        if (s.CheckInterval < TimeSpan.FromMilliseconds(100))
        {
            throw new ConfigurationException($"migration.drain.check-interval = {s.CheckInterval}; expected at least 100ms");
        }

        return s;
    }
}
