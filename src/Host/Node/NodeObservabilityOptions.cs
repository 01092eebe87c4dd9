using Akka.Configuration;
using Migration.Actors.Logging;
using Migration.Actors.Metrics;
using Migration.Actors.Node;
using Migration.Actors.Settings;

namespace Migration.Host.Node;

/// <summary>`node --metrics-port P` and `--log-format text|json`: command-line overrides of migration.metrics.port and migration.log-format.</summary>
public static class NodeObservabilityOptions
{
    public static Config Apply(Config extra, int? metricsPort, string? logFormat)
    {
        var lines = new List<string>();
        if (metricsPort is { } p)
        {
            lines.Add($"migration.metrics.port = {p}");
        }

        if (logFormat is not null)
        {
            lines.Add($"migration.log-format = {logFormat}");
        }

        return lines.Count == 0 ? extra : ConfigurationFactory.ParseString(string.Join('\n', lines)).WithFallback(extra);
    }

    /// <summary>
    /// The "node NAME up at ADDRESS" line (scripts and tests wait for it), plus where /metrics is served; in json log format
    /// as JSON objects like every other line.
    /// </summary>
    public static void AnnounceUp(NodeHost node, string name)
    {
        var settings = ObservabilitySettings.FromConfig(node.System.Settings.Config);
        Say(node, $"node {name} up at {node.Address}");
        if (settings.MetricsEnabled)
        {
            Say(node, $"node {name} metrics at http://{settings.MetricsHost}:{NodeMetrics.Get(node.System).Port}/metrics");
        }
    }

    /// <summary>One line of the node command on stdout, as a JSON object in json log format.</summary>
    public static void Say(NodeHost node, string line) =>
        Console.WriteLine(ObservabilitySettings.FromConfig(node.System.Settings.Config).LogFormat == "json"
            ? NodeLogger.JsonLine(DateTime.UtcNow, "INFO", node.Address, typeof(NodeObservabilityOptions).FullName, Environment.CurrentManagedThreadId, line)
            : line);
}
