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
        var command = new Command("node", "Run a hypervisor node");
        foreach (var o in new Option[] { name, host, port, seeds, config, listenerPort })
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

            extra = extra.WithFallback(EnvironmentConfig());
            if (r.GetValue(config) is { } file)
            {
                if (!File.Exists(file))
                {
                    await Console.Error.WriteLineAsync($"error: config file {file} not found");
                    return 2;
                }

                extra = extra.WithFallback(ConfigurationFactory.ParseString(await File.ReadAllTextAsync(file, ct)));
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
            _ = node.System.WhenTerminated.ContinueWith(_ => stop.TrySetResult(), TaskScheduler.Default);
            try
            {
                await node.WaitUpAsync(1, TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException e)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
                return 1;
            }

            Console.WriteLine($"node {nodeName} up at {node.Address}");
            await stop.Task;
            Console.WriteLine($"node {nodeName} leaving");
            return 0;
        });
        return command;
    }

    /// <summary>MIGRATION_FOO_BAR=value -> migration.foo-bar = value.</summary>
    private static Config EnvironmentConfig()
    {
        var lines = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (key.StartsWith("MIGRATION_", StringComparison.Ordinal) && e.Value is string value)
            {
                var path = "migration." + key["MIGRATION_".Length..].ToLowerInvariant().Replace("__", ".").Replace('_', '-');
                lines.Add($"{path} = \"{value.Replace("\"", "\\\"")}\"");
            }
        }

        return ConfigurationFactory.ParseString(string.Join('\n', lines));
    }
}
