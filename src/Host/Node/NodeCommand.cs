using System.CommandLine;
using Akka.Configuration;
using Migration.Actors.Node;

namespace Migration.Host.Node;

/// <summary>
/// `node`: runs one hypervisor node until SIGINT/SIGTERM. Configuration: the reference HOCON (hocon/), then
/// --config FILE, then environment variables MIGRATION_* (e.g. MIGRATION_CHANNELS=8 sets migration.channels),
/// then the command line (MIGRATION_LISTENER__PORT=7000 sets migration.listener.port: a double underscore nests). Prints one line "node NAME up at ADDRESS (channels on HOST:PORT)" once it is Up.
/// </summary>
public static class NodeCommand
{
    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "The node's name (used by the CLI: --on NAME, --to NAME)", Required = true };
        var host = new Option<string>("--host") { Description = "Address to bind and advertise", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Cluster (Akka.Remote) port", Required = true };
        var seeds = new Option<string[]>("--seed") { Description = "HOST:PORT of a node to join (repeatable); none = start a new cluster" };
        var config = new Option<string?>("--config") { Description = "A HOCON file overriding the reference configuration" };
        var listenerPort = new Option<int?>("--listener-port") { Description = "Port of the data-channel listener (default: any free port)" };
        var joinTimeout = new Option<int>("--join-timeout") { Description = "Seconds to wait for this node to become an Up member before exiting with code 1", DefaultValueFactory = _ => 60 };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve Prometheus metrics at http://127.0.0.1:P/metrics (default: migration.metrics.port, 0 = off)" };
        var logFormat = new Option<string?>("--log-format") { Description = "Log lines as text or json (one JSON object per line)" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var command = new Command("node", "Run a hypervisor node");
        foreach (var o in new Option[] { name, host, port, seeds, config, listenerPort, joinTimeout, metricsPort, logFormat })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (r, ct) =>
        {
            var extra = Config.Empty;
            if (r.GetValue(listenerPort) is { } lp)
            {
                extra = ConfigurationFactory.ParseString($"migration.listener.port = {lp}");
            }

            extra = NodeObservabilityOptions.Apply(extra, r.GetValue(metricsPort), r.GetValue(logFormat));
            try
            {
                extra = extra.WithFallback(HostConfig.Load(r.GetValue(config)));
            }
            catch (FileNotFoundException e)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
                return 2;
            }

            var nodeName = r.GetValue(name)!;
            var host1 = r.GetValue(host)!;
            NodeHost node;
            try
            {
                node = NodeHost.Start(host1, r.GetValue(port), r.GetValue(seeds) ?? [], extra, name: nodeName);
            }
            catch (Exception e) when (e is FileNotFoundException or ArgumentException or Akka.Configuration.ConfigurationException or System.Security.Cryptography.CryptographicException)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
                return 2;
            }

            await using var owned = node;
            try
            {
                // Host drains run in a cluster singleton among the node processes (not in the embedded demo or bench).
                Actors.Drain.DrainSingleton.Start(node.System, Actors.Drain.DrainSettings.FromConfig(node.System.Settings.Config));
            }
            catch (Akka.Configuration.ConfigurationException e)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
                return 2;
            }
            catch (InvalidOperationException e)
            {
                // The ActorSystem already ended (a join the seeds refused, e.g. a foreign certificate): same answer as a
                // join that times out below, not an unhandled exception (TlsClusterTests' intruder node, at load 100).
                await Console.Error.WriteLineAsync(JoinFailed(node, e));
                return 1;
            }

            var stop = new TaskCompletionSource();
            using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
            {
                c.Cancel = true;
                stop.TrySetResult();
            });
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.TrySetResult();
            };
            // The node ends when the operator stops it, or when its ActorSystem ends for a reason other than a downing;
            // after a downing it rejoins by itself as a new incarnation (NodeHost, migration.node-rejoin).
            node.Notice += line => Console.WriteLine($"node {nodeName} {line}");
            _ = node.Stopped.ContinueWith(_ => stop.TrySetResult(), TaskScheduler.Default);
            try
            {
                await node.WaitUpAsync(1, TimeSpan.FromSeconds(Math.Max(1, r.GetValue(joinTimeout))));
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                // InvalidOperation: the ActorSystem ended while joining (seen once in CI with a refused certificate).
                await Console.Error.WriteLineAsync(JoinFailed(node, e));
                return 1;
            }

            NodeObservabilityOptions.AnnounceUp(node, nodeName);
            await stop.Task;
            NodeObservabilityOptions.Say(node, $"node {nodeName} leaving");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The error line of a node that did not become a member. With TLS on, the usual cause is a certificate the seeds
    /// refuse (their log names it), so the line says what to check.
    /// </summary>
    private static string JoinFailed(NodeHost node, Exception e)
    {
        var hint = node.Settings.TlsEnabled
            ? $"; the cluster refuses a node whose certificate does not chain to its CA: is {node.Settings.TlsCertificate} signed by the cluster's CA?"
            : "";
        return "error: " + e.Message + hint;
    }
}
