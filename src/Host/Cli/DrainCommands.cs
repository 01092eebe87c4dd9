using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Migration.Actors.Drain;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Spectre.Console;

namespace Migration.Host.Cli;

/// <summary>
/// `drain` and `uncordon`, and the drain section of `status`. The drain itself runs in the cluster (the drain coordinator
/// singleton, reached through any node's proxy at /user/drain): the CLI only starts it and may exit at once.
/// </summary>
public static class DrainCommands
{
    private static readonly TimeSpan MinimumAskTimeout = TimeSpan.FromSeconds(30);
    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    /// <summary>A drain command waits for the singleton, which may be moving to another node: at least 30 s.</summary>
    private static TimeSpan AskTimeout(ClusterClient client) => client.RequestTimeout > MinimumAskTimeout ? client.RequestTimeout : MinimumAskTimeout;

    public static Command Drain(Option<string[]> seeds, Func<ParseResult, Option<string[]>, Func<ClusterClient, Task<int>>, Task<int>> run)
    {
        var defaults = DrainSettings.FromConfig(NodeHost.ReferenceConfig());
        var node = new Option<string>("--node") { Description = "Node (name or address) to cordon and empty", Required = true };
        var maxParallel = new Option<int>("--max-parallel")
        {
            Description = $"Migrations at once from this node (default {defaults.MaxParallelPerNode}; the cluster-wide cap is migration.max-parallel-migrations)",
            DefaultValueFactory = _ => defaults.MaxParallelPerNode,
        };
        var to = new Option<string[]>("--to") { Description = "Allowed target node (repeatable; default: every other node with room)" };
        var wait = new Option<bool>("--wait") { Description = "Follow the drain until it ends (exit 1 if a guest could not be moved)" };
        var options = new MigrationOptions();
        var command = new Command("drain", "Cordon a node and live-migrate every guest it runs to other nodes") { seeds, node, maxParallel, to, wait };
        options.AddTo(command);
        command.SetAction((r, ct) => run(r, seeds, async client =>
        {
            if (!options.TryApply(r, MigrationSettings.FromConfig(NodeHost.ReferenceConfig()), out var settings, out var error))
            {
                throw new CliException(ExitCodes.Usage, error);
            }

            var k = r.GetValue(maxParallel);
            if (k is < 1 or > 64)
            {
                throw new CliException(ExitCodes.Usage, $"--max-parallel {k}: expected 1..64");
            }

            var source = await client.ResolveNodeAsync(r.GetValue(node)!);
            var targets = new List<string>();
            foreach (var t in r.GetValue(to) ?? [])
            {
                targets.Add((await client.ResolveNodeAsync(t)).Address);
            }

            var names = await NamesAsync(client);
            var started = await AskAsync<DrainStarted>(client, new StartDrain(source.Address, k, targets, settings));
            var d = started.Drain;
            Console.WriteLine($"drain {d.DrainId}: {source.Name} cordoned; {d.Guests.Count} guests to move, at most {d.MaxParallel} at a time");
            if (!r.GetValue(wait))
            {
                WriteJson(r.GetValue(options.Json), d, names);
                return ExitCodes.Ok;
            }

            while (d.IsRunning)
            {
                await Task.Delay(500, ct);
                d = (await AskAsync<DrainList>(client, GetDrains.Instance)).Drains.FirstOrDefault(x => x.DrainId == d.DrainId) ?? d;
            }

            Print(d, names);
            WriteJson(r.GetValue(options.Json), d, names);
            return d.State == DrainStatus.Done ? ExitCodes.Ok : ExitCodes.Failed;
        }));
        return command;
    }

    public static Command Uncordon(Option<string[]> seeds, Func<ParseResult, Option<string[]>, Func<ClusterClient, Task<int>>, Task<int>> run)
    {
        var node = new Option<string>("--node") { Description = "Node (name or address) that takes guests again", Required = true };
        var command = new Command("uncordon", "Lift a node's cordon: it accepts incoming migrations and new guests again") { seeds, node };
        command.SetAction((r, _) => run(r, seeds, async client =>
        {
            var target = await client.ResolveNodeAsync(r.GetValue(node)!);
            var done = await AskAsync<Uncordoned>(client, new Uncordon(target.Address));
            Console.WriteLine($"{target.Name} uncordoned" + (done.CancelledGuests > 0 ? $"; {done.CancelledGuests} guests of its drain not started stay on it" : ""));
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The `status` section: cordoned nodes and each drain with its guests (nothing when there are none).</summary>
    public static async Task PrintAsync(ClusterClient client)
    {
        var list = await AskAsync<DrainList>(client, GetDrains.Instance);
        var names = await NamesAsync(client);
        if (list.Cordoned.Count > 0)
        {
            Console.WriteLine("cordoned: " + string.Join(", ", list.Cordoned.Select(c => Name(names, c))));
        }

        foreach (var d in list.Drains)
        {
            Print(d, names);
        }
    }

    private static void Print(DrainStatus d, IReadOnlyDictionary<string, string> names)
    {
        var ended = d.EndedUtc is { } e ? FormattableString.Invariant($", ended {e:HH:mm:ss}") : "";
        Console.WriteLine(FormattableString.Invariant(
            $"drain {d.DrainId} of {Name(names, d.Node)}: {d.State}, at most {d.MaxParallel} at a time, started {d.StartedUtc:HH:mm:ss}{ended}"));
        var table = new Table().AddColumns("VM", "RAM", "STATE", "TARGET", "PROGRESS", "ATTEMPTS", "DETAIL");
        foreach (var g in d.Guests)
        {
            string[] cells =
            [
                Markup.Escape(g.VmId), ByteSize.Format(g.RamBytes), g.State, Markup.Escape(g.Target is null ? "-" : Name(names, g.Target)),
                g.Percent.ToString("0.0", CultureInfo.InvariantCulture) + "%", g.Attempts.Count.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(g.Error ?? g.MigrationId?.ToString() ?? ""),
            ];
            table.AddRow(cells);
        }

        AnsiConsole.Write(table);
    }

    private static void WriteJson(string? path, DrainStatus d, IReadOnlyDictionary<string, string> names)
    {
        if (path is null)
        {
            return;
        }

        var doc = new
        {
            d.DrainId,
            Node = Name(names, d.Node),
            d.State,
            d.MaxParallel,
            d.StartedUtc,
            d.EndedUtc,
            Guests = d.Guests.Select(g => new
            {
                g.VmId,
                g.RamBytes,
                g.State,
                Target = g.Target is null ? null : Name(names, g.Target),
                g.MigrationId,
                g.Percent,
                g.Error,
                Attempts = g.Attempts.Select(a => new { Target = Name(names, a.Target), a.MigrationId, a.StartedUtc, a.EndedUtc, a.Outcome }),
            }),
        };
        File.WriteAllText(path, JsonSerializer.Serialize(doc, JsonOptions));
    }

    /// <summary>Asks the drain coordinator through the proxy of the first node that answers.</summary>
    public static async Task<T> AskAsync<T>(ClusterClient client, object message)
    {
        var nodes = (await client.NodesAsync()).Where(n => n.Reachable && n.Status == "Up").ToArray();
        var errors = new List<string>();
        foreach (var n in nodes)
        {
            object reply;
            try
            {
                reply = await client.System.ActorSelection($"{n.Address.TrimEnd('/')}/user/{DrainCoordinator.ProxyName}").Ask<object>(message, AskTimeout(client));
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or TimeoutException)
            {
                errors.Add($"{n.Name}: no answer within {AskTimeout(client).TotalSeconds:0} s");
                continue;
            }

            return reply switch
            {
                T t => t,
                CommandFailed f => throw new CliException(ExitCodes.FromCode(f.Code), f.Reason),
                _ => throw new CliException(ExitCodes.Failed, $"unexpected answer {reply.GetType().Name} from the drain coordinator"),
            };
        }

        throw new CliException(ExitCodes.Unreachable, "the drain coordinator did not answer: " + string.Join("; ", errors));
    }

    private static async Task<IReadOnlyDictionary<string, string>> NamesAsync(ClusterClient client) =>
        (await client.NodesAsync()).ToDictionary(n => n.Address, n => n.Name, StringComparer.Ordinal);

    private static string Name(IReadOnlyDictionary<string, string> names, string address) => names.GetValueOrDefault(address, address);
}
