using Akka.Configuration;

namespace Migration.Actors.Settings;

/// <summary>
/// What a hypervisor node does when the cluster downs it (migration.node-rejoin in hocon/cluster.conf): with
/// Enabled, <see cref="Node.NodeHost"/> starts a new incarnation (a new ActorSystem at the same host:port and name)
/// that joins the members it knew and adopts the guests it runs; RetryInterval is the pause between attempts to
/// start that incarnation (e.g. while the old port is still being released).
/// </summary>
public sealed record RejoinSettings(bool Enabled, TimeSpan RetryInterval)
{
    public static RejoinSettings FromConfig(Config config)
    {
        var c = config.GetConfig("migration.node-rejoin");
        var settings = new RejoinSettings(
            c?.GetBoolean("enabled", true) ?? true,
            c?.GetTimeSpan("retry-interval", TimeSpan.FromSeconds(1)) ?? TimeSpan.FromSeconds(1));
        if (settings.RetryInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"migration.node-rejoin.retry-interval = {settings.RetryInterval}; expected > 0");
        }

        return settings;
    }
}
