using System.CommandLine;
using System.Globalization;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Host.Cli;

/// <summary>
/// `set ID [--downtime-limit MS] [--max-bandwidth SIZE] [--auto-converge on|off]` and `switchover ID`: change a running
/// migration (virsh migrate-setmaxdowntime / migrate-setspeed / migrate-start-postcopy's role of "stop now"). Both find
/// the migration's source node (by id prefix, like `cancel`) and send it SetMigrationParameters or ForceSwitchover.
/// Exit 3 for an unknown migration, 5 for one that ended or is past the point of change, 2 for a bad value.
/// </summary>
public static class LiveChangeCommands
{
    public static Command Set()
    {
        var seeds = CliCommands.SeedOption();
        var id = new Argument<string>("ID") { Description = "Migration id (or a unique prefix)" };
        var limit = new Option<string?>("--downtime-limit") { Description = "New downtime limit in milliseconds" };
        var bandwidth = new Option<string?>("--max-bandwidth") { Description = "New precopy bandwidth limit per second (e.g. 100MiB; 0 = unlimited)" };
        var auto = new Option<string?>("--auto-converge") { Description = "on or off" };
        var command = new Command("set", "Change a running migration's downtime limit, bandwidth limit or auto-converge") { seeds, id, limit, bandwidth, auto };
        command.SetAction((r, _) => CliCommands.Run(r, seeds, async client =>
        {
            var message = Parse(r.GetValue(limit), r.GetValue(bandwidth), r.GetValue(auto));
            var (node, migration) = await FindAsync(client, r.GetValue(id)!);
            var changed = await client.AskAsync<MigrationParametersChanged>(node.Address, message with { MigrationId = migration.MigrationId });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"migration {changed.MigrationId} ({changed.Phase}): downtime limit {changed.DowntimeLimitMs:0} ms, " +
                $"max bandwidth {(changed.MaxBandwidth == 0 ? "unlimited" : ByteSize.Format(changed.MaxBandwidth) + "/s")}, auto-converge {(changed.AutoConverge ? "on" : "off")}"));
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Switchover()
    {
        var seeds = CliCommands.SeedOption();
        var id = new Argument<string>("ID") { Description = "Migration id (or a unique prefix)" };
        var command = new Command("switchover", "Stop the guest at the next iteration boundary and finish the migration, whatever the expected downtime") { seeds, id };
        command.SetAction((r, _) => CliCommands.Run(r, seeds, async client =>
        {
            var (node, migration) = await FindAsync(client, r.GetValue(id)!);
            var accepted = await client.AskAsync<SwitchoverAccepted>(node.Address, new ForceSwitchover(migration.MigrationId));
            Console.WriteLine($"migration {accepted.MigrationId}: switchover requested in phase {accepted.Phase}; the guest stops at the next iteration boundary");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The options as a message (MigrationId filled in later); CliException(Usage) on a bad or missing value.</summary>
    public static SetMigrationParameters Parse(string? limitText, string? bandwidthText, string? autoText)
    {
        double? limit = null;
        long? bandwidth = null;
        bool? auto = null;
        if (limitText is not null)
        {
            if (!double.TryParse(limitText.Replace("ms", "", StringComparison.OrdinalIgnoreCase), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)
                || !(ms > 0) || !double.IsFinite(ms))
            {
                throw new CliException(ExitCodes.Usage, $"--downtime-limit '{limitText}': expected a positive number of milliseconds");
            }

            limit = ms;
        }

        if (bandwidthText is not null)
        {
            if (!ByteSize.TryParse(bandwidthText, out var bytes, out var error))
            {
                throw new CliException(ExitCodes.Usage, "--max-bandwidth: " + error);
            }

            bandwidth = bytes;
        }

        if (autoText is not null)
        {
            auto = autoText.ToLowerInvariant() switch
            {
                "on" or "true" or "yes" => true,
                "off" or "false" or "no" => false,
                _ => throw new CliException(ExitCodes.Usage, $"--auto-converge '{autoText}': expected on or off"),
            };
        }

        if (limit is null && bandwidth is null && auto is null)
        {
            throw new CliException(ExitCodes.Usage, "set: nothing to change; give --downtime-limit, --max-bandwidth or --auto-converge");
        }

        return new SetMigrationParameters(Guid.Empty, limit, bandwidth, auto);
    }

    private static async Task<(NodeInfo Node, MigrationInfo Migration)> FindAsync(ClusterClient client, string wanted)
    {
        var hits = (await client.MigrationsAsync())
            .Where(m => m.Migration.MigrationId.ToString().StartsWith(wanted, StringComparison.OrdinalIgnoreCase)).ToArray();
        return hits.Length switch
        {
            0 => throw new CliException(ExitCodes.Unknown, $"unknown migration '{wanted}'"),
            1 => (hits[0].Node, hits[0].Migration),
            _ => throw new CliException(ExitCodes.Usage, $"migration id '{wanted}' is ambiguous ({hits.Length} migrations start with it)"),
        };
    }
}
