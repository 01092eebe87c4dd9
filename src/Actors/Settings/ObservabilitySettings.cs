using Akka.Configuration;

namespace Migration.Actors.Settings;

/// <summary>
/// A node's observability settings (node-only, never sent to a peer), read once from `migration.metrics` and
/// `migration.log-format` (hocon/migration.conf): where /metrics is served and how log lines are written.
/// </summary>
public sealed record ObservabilitySettings
{
    /// <summary>Address the metrics endpoint binds to.</summary>
    public string MetricsHost { get; init; } = "127.0.0.1";

    /// <summary>Port of http://HOST:PORT/metrics; 0 = no endpoint (the default).</summary>
    public int MetricsPort { get; init; }

    public bool MetricsEnabled => MetricsPort > 0;

    /// <summary>"text" (one line per event, Akka's layout) or "json" (one JSON object per line).</summary>
    public string LogFormat { get; init; } = "text";

    public static ObservabilitySettings FromConfig(Config config)
    {
        var d = new ObservabilitySettings();
        var port = config.GetInt("migration.metrics.port", d.MetricsPort);
        if (port is < 0 or > 65535)
        {
            throw new ConfigurationException($"migration.metrics.port = {port}; expected 0 (off) or a TCP port 1..65535");
        }

        var format = config.GetString("migration.log-format", d.LogFormat);
        if (format is not ("text" or "json"))
        {
            throw new ConfigurationException($"migration.log-format = '{format}'; expected text or json");
        }

        return new ObservabilitySettings
        {
            MetricsHost = config.GetString("migration.metrics.host", d.MetricsHost),
            MetricsPort = port,
            LogFormat = format,
        };
    }
}
