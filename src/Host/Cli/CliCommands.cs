using System.CommandLine;
using System.Globalization;
using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Spectre.Console;

namespace Migration.Host.Cli;

/// <summary>
/// The operator's CLI: `nodes`, `vm create`, `vm list`, `migrate`, `status`, `cancel`. Each reaches the cluster
/// through --seed HOST:PORT and scripts it with the nodes' own cluster messages. Exit code 0 on success, else
/// one line on stderr and a code from <see cref="ExitCodes"/>.
/// </summary>
public static class CliCommands
{
    public static IEnumerable<Command> Create() => CliConfigOption.AddTo([Nodes(), Vm(), Migrate(), Status(), Cancel(),
        LiveChangeCommands.Set(), LiveChangeCommands.Switchover(), DrainCommands.Drain(SeedOption(), Run), DrainCommands.Uncordon(SeedOption(), Run)]);

    internal static Option<string[]> SeedOption() => new("--seed")
    {
        Description = "HOST:PORT of a cluster node (repeatable)",
        Required = true,
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>Runs a CLI action with a connected client; turns CliException into its exit code and one line.</summary>
    internal static async Task<int> Run(ParseResult r, Option<string[]> seeds, Func<ClusterClient, Task<int>> action)
    {
        try
        {
            await using var client = ClusterClient.Connect(r.GetValue(seeds) ?? [], CliConfigOption.Value(r));
            return await action(client);
        }
        catch (CliException e)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return e.ExitCode;
        }
    }

    private static Command Nodes()
    {
        var seeds = SeedOption();
        var command = new Command("nodes", "List the cluster's hypervisor nodes") { seeds };
        command.SetAction((r, _) => Run(r, seeds, async client =>
        {
            var table = new Table().AddColumns("NODE", "ADDRESS", "STATUS", "REACHABLE");
            foreach (var n in await client.NodesAsync())
            {
                table.AddRow(Markup.Escape(n.Name), Markup.Escape(n.Address), n.Status, n.Reachable ? "yes" : "NO");
            }

            AnsiConsole.Write(table);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Vm()
    {
        var vm = new Command("vm", "Create and list guests");

        var seeds = SeedOption();
        var id = new Option<string>("--id") { Description = "Guest id", Required = true };
        var on = new Option<string>("--on") { Description = "Node name (or address) to create it on", Required = true };
        var ram = new Option<string>("--ram") { Description = "Guest RAM size", Required = true };
        var devices = new Option<string[]>("--device") { Description = "vfio:ID:SIZE[:precopy=SIZE][:dirty=SIZE][:load-delay=MS] or vmstate:ID (repeatable)" };
        var dirty = new Option<string>("--dirty-rate") { Description = "Bytes per second the workload dirties", DefaultValueFactory = _ => "0" };
        var create = new Command("create", "Create a running guest on a node") { seeds, id, on, ram, devices, dirty };
        create.SetAction((r, _) => Run(r, seeds, async client =>
        {
            var spec = BuildSpec(r.GetValue(id)!, r.GetValue(ram)!, r.GetValue(devices) ?? [], r.GetValue(dirty)!);
            var node = await client.ResolveNodeAsync(r.GetValue(on)!);
            var existing = (await client.GuestsAsync()).FirstOrDefault(x => x.Guest.VmId == spec.Id);
            if (existing.Guest is not null)
            {
                throw new CliException(ExitCodes.Refused, $"guest {spec.Id} already exists on {existing.Node.Name}");
            }

            await client.AskAsync<GuestCreated>(node.Address, new CreateGuest(spec), TimeSpan.FromMinutes(2));
            Console.WriteLine($"guest {spec.Id} created on {node.Name}");
            return ExitCodes.Ok;
        }));
        vm.Subcommands.Add(create);

        var listSeeds = SeedOption();
        var list = new Command("list", "List every guest with its owner node and state") { listSeeds };
        list.SetAction((r, _) => Run(r, listSeeds, async client =>
        {
            var listings = await client.ListingsAsync();
            var guests = ClusterClient.Guests(listings);
            var recorded = await client.OwnersAsync();
            var table = new Table().AddColumns("VM", "NODE", "STATE", "RAM", "DEVICES", "MIGRATION", "CLUSTER RECORD");
            foreach (var (node, g) in guests)
            {
                var record = recorded.TryGetValue(g.VmId, out var owner) ? owner == node.Address ? "agrees" : "says " + owner : "none yet";
                table.AddRow(Markup.Escape(g.VmId), Markup.Escape(node.Name), g.State, ByteSize.Format(g.RamBytes),
                    g.Devices.ToString(CultureInfo.InvariantCulture), g.MigrationId ?? "-", Markup.Escape(record));
            }

            AnsiConsole.Write(table);
            foreach (var line in ClusterClient.MissingListings(listings))
            {
                AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(line)}[/]");
            }

            PoolPrinter.Print(ClusterClient.Pools(listings));
            return ExitCodes.Ok;
        }));
        vm.Subcommands.Add(list);
        return vm;
    }

    private static Command Migrate()
    {
        var seeds = SeedOption();
        var vm = new Option<string>("--vm") { Description = "Guest id", Required = true };
        var to = new Option<string>("--to") { Description = "Destination node name (or address)", Required = true };
        var detach = new Option<bool>("--detach") { Description = "Print the migration id and return at once" };
        var options = new MigrationOptions();
        var command = new Command("migrate", "Live-migrate a guest to another node") { seeds, vm, to, detach };
        options.AddTo(command);
        command.SetAction((r, ct) => Run(r, seeds, async client =>
        {
            if (!options.TryApply(r, MigrationSettings.FromConfig(NodeHost.ReferenceConfig()), out var settings, out var error))
            {
                throw new CliException(ExitCodes.Usage, error);
            }

            var (source, guest) = await client.FindGuestAsync(r.GetValue(vm)!);
            var destination = await client.ResolveNodeAsync(r.GetValue(to)!);
            if (destination.Address == source.Address)
            {
                throw new CliException(ExitCodes.Refused, $"guest {guest.VmId} already runs on {source.Name}");
            }

            var watcher = r.GetValue(detach) ? null : new ProgressWatcher(client.System);
            var started = await client.AskAsync<MigrationStarted>(source.Address,
                new StartMigration(guest.VmId, destination.Address, settings, watcher?.Actor), TimeSpan.FromSeconds(30));
            if (watcher is null)
            {
                Console.WriteLine(started.MigrationId);
                return ExitCodes.Ok;
            }

            Console.WriteLine($"migration {started.MigrationId}: {guest.VmId} {source.Name} -> {destination.Name}");
            var report = await ProgressConsole.FollowAsync(watcher, ct);
            Console.WriteLine();
            ReportPrinter.Print(report);
            if (r.GetValue(options.Json) is { } json)
            {
                ReportPrinter.WriteJson(report, json);
            }

            Timeline.TimelineOutput.WriteIfAsked(report, r.GetValue(options.Timeline));

            if (report.Status == "completed" && report.Verified)
            {
                return ExitCodes.Ok;
            }

            await Console.Error.WriteLineAsync($"error: migration {report.Status}: {report.Error}");
            return ExitCodes.Failed;
        }));
        return command;
    }

    private static Command Status()
    {
        var seeds = SeedOption();
        var id = new Argument<string?>("ID") { Description = "Migration id (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var watch = new Option<bool>("--watch") { Description = "Follow the migration until it ends" };
        var command = new Command("status", "Show migrations and their progress") { seeds, id, watch };
        command.SetAction((r, ct) => Run(r, seeds, async client =>
        {
            var all = await client.MigrationsAsync();
            var wanted = r.GetValue(id);
            if (wanted is not null)
            {
                all = all.Where(m => m.Migration.MigrationId.ToString().StartsWith(wanted, StringComparison.OrdinalIgnoreCase)).ToArray();
                if (all.Count == 0)
                {
                    throw new CliException(ExitCodes.Unknown, $"unknown migration '{wanted}'");
                }
            }

            if (r.GetValue(watch))
            {
                if (all.Count != 1)
                {
                    throw new CliException(ExitCodes.Usage, "--watch needs exactly one migration id");
                }

                var (node, m) = all[0];
                var watcher = new ProgressWatcher(client.System);
                client.Node(node.Address).Tell(new SubscribeMigration(m.MigrationId, watcher.Actor));
                var report = await ProgressConsole.FollowAsync(watcher, ct);
                Console.WriteLine();
                ReportPrinter.Print(report);
                return report.Status == "completed" ? ExitCodes.Ok : ExitCodes.Failed;
            }

            if (wanted is null)
            {
                await DrainCommands.PrintAsync(client);
            }

            var table = new Table().AddColumns("MIGRATION", "VM", "FROM", "STATE", "PROGRESS", "DETAIL");
            foreach (var (node, m) in all)
            {
                var detail = m.Report is { } rep
                    ? rep.Status == "completed" ? $"downtime {rep.DowntimeMs:0} ms, verified {rep.Verified}, switchover {rep.SwitchoverReason}" : rep.Error ?? ""
                    : m.Progress is { } p ? ReportPrinter.ProgressLine(p) : "";
                var percent = m.Report is not null ? (m.Report.Status == "completed" ? "100%" : "-") : m.Progress is { } pp ? $"{pp.Percent:0.0}%" : "0%";
                table.AddRow(m.MigrationId.ToString(), Markup.Escape(m.VmId), Markup.Escape(node.Name), m.State, percent, Markup.Escape(detail));
            }

            AnsiConsole.Write(table);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Cancel()
    {
        var seeds = SeedOption();
        var id = new Argument<string>("ID") { Description = "Migration id" };
        var command = new Command("cancel", "Cancel a running migration; the guest keeps running on its source") { seeds, id };
        command.SetAction((r, _) => Run(r, seeds, async client =>
        {
            var wanted = r.GetValue(id)!;
            var hit = (await client.MigrationsAsync()).FirstOrDefault(m => m.Migration.MigrationId.ToString().StartsWith(wanted, StringComparison.OrdinalIgnoreCase));
            if (hit.Migration is null)
            {
                throw new CliException(ExitCodes.Unknown, $"unknown migration '{wanted}'");
            }

            await client.AskAsync<CancelAccepted>(hit.Node.Address, new CancelMigration(hit.Migration.MigrationId));
            Console.WriteLine($"migration {hit.Migration.MigrationId} cancelled; {hit.Migration.VmId} keeps running on {hit.Node.Name}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static GuestSpec BuildSpec(string id, string ramText, string[] deviceTexts, string dirtyText)
    {
        if (!ByteSize.TryParse(ramText, out var ram, out var error))
        {
            throw new CliException(ExitCodes.Usage, "--ram: " + error);
        }

        if (!ByteSize.TryParse(dirtyText, out var dirty, out error))
        {
            throw new CliException(ExitCodes.Usage, "--dirty-rate: " + error);
        }

        var devices = new List<DeviceSpec>();
        var seed = 11;
        foreach (var t in deviceTexts)
        {
            if (!DeviceOption.TryParse(t, seed++, out var d, out error))
            {
                throw new CliException(ExitCodes.Usage, error);
            }

            devices.Add(d);
        }

        var spec = new GuestSpec(id, ram, devices, dirty);
        try
        {
            spec.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliException(ExitCodes.Usage, e.Message);
        }

        return spec;
    }
}
