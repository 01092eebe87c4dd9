using System.CommandLine;
using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Migration.Host.Cli;

namespace Migration.Host.Demo;

/// <summary>
/// `demo`: an embedded two-node cluster on loopback, one guest created on the first node and migrated to the
/// second while its workload runs, with live progress and the final report. No set-up needed.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var ram = new Option<string>("--ram") { Description = "Guest RAM size", DefaultValueFactory = _ => "1GiB" };
        var devices = new Option<string[]>("--device")
        {
            Description = "vfio:ID:SIZE[:precopy=SIZE][:dirty=SIZE][:load-delay=MS] or vmstate:ID (repeatable; replaces the default devices; 'none' for no device)",
            AllowMultipleArgumentsPerToken = false,
        };
        var dirtyRate = new Option<string>("--dirty-rate") { Description = "Bytes per second the guest workload dirties (0 = idle)", DefaultValueFactory = _ => "64MiB" };
        var migration = new MigrationOptions();
        var command = new Command("demo", "Migrate a running guest between two embedded nodes on loopback");
        command.Options.Add(ram);
        command.Options.Add(devices);
        command.Options.Add(dirtyRate);
        migration.AddTo(command);
        command.SetAction((r, ct) => RunAsync(r, ram, devices, dirtyRate, migration, ct));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult r, Option<string> ramOption, Option<string[]> deviceOption, Option<string> dirtyOption,
        MigrationOptions migration, CancellationToken ct)
    {
        if (!TryBuildSpec(r, ramOption, deviceOption, dirtyOption, out var spec, out var error)
            || !migration.TryApply(r, MigrationSettings.FromConfig(NodeHost.ReferenceConfig()), out var settings, out error))
        {
            await Console.Error.WriteLineAsync("error: " + error);
            return 2;
        }

        Console.WriteLine($"Starting two nodes on loopback...");
        // The demo's console is its progress display: the embedded nodes log warnings and errors only.
        var quiet = Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING");
        await using var source = NodeHost.Start("127.0.0.1", 0, [], quiet);
        await source.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        await using var destination = NodeHost.Start("127.0.0.1", 0, [source.Address], quiet);
        await destination.WaitUpAsync(2, TimeSpan.FromSeconds(30));
        await source.WaitUpAsync(2, TimeSpan.FromSeconds(30));
        Console.WriteLine($"  source      {source.Address}");
        Console.WriteLine($"  destination {destination.Address}");

        Console.WriteLine($"Creating guest {spec.Id}: {ByteSize.Format(spec.RamBytes)} RAM, " +
                          $"{string.Join(", ", spec.Devices.Select(d => d.Kind == Devices.Device.DeviceKind.Vfio ? $"{d.Id} (vfio {ByteSize.Format(d.StateBytes)}, precopy {ByteSize.Format(d.PrecopyBytes)})" : $"{d.Id} (vmstate)"))}, " +
                          $"dirtying {ByteSize.Format(spec.DirtyRateBytesPerSecond)}/s");
        var created = await source.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromMinutes(2), ct);
        if (created is CommandFailed cf)
        {
            await Console.Error.WriteLineAsync("error: " + cf.Reason);
            return 1;
        }

        var watcher = new ProgressWatcher(source.System);
        var started = await source.Node.Ask<object>(new StartMigration(spec.Id, destination.Address, settings, watcher.Actor), TimeSpan.FromSeconds(30), ct);
        if (started is not MigrationStarted ms)
        {
            await Console.Error.WriteLineAsync("error: " + ((started as CommandFailed)?.Reason ?? started.ToString()));
            return 1;
        }

        Console.WriteLine($"Migration {ms.MigrationId}: {settings.Channels} channels, codec {Transport.Codecs.RamCodecRegistry.Name(settings.Codec)}, " +
                          $"device budget {ByteSize.Format(settings.DeviceBufferBudget)}, chunk {ByteSize.Format(settings.ChunkSize)}, downtime limit {settings.DowntimeLimit.TotalMilliseconds:0} ms");
        var report = await ProgressConsole.FollowAsync(watcher, ct);
        Console.WriteLine();
        ReportPrinter.Print(report);

        var ok = report.Status == "completed" && report.Verified;
        if (ok)
        {
            var digests = await destination.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(60), ct);
            if (digests is GuestDigests d)
            {
                Console.WriteLine($"Guest {spec.Id} runs on the destination; workload pattern check of its RAM: {(d.WorkloadPatternOk ? "ok" : "FAILED: " + d.PatternMessage)}");
                ok &= d.WorkloadPatternOk;
            }
        }

        if (r.GetValue(migration.Json) is { } json)
        {
            ReportPrinter.WriteJson(report, json);
            Console.WriteLine($"Report written to {json}");
        }

        Timeline.TimelineOutput.WriteIfAsked(report, r.GetValue(migration.Timeline));

        return ok ? 0 : 1;
    }

    private static bool TryBuildSpec(ParseResult r, Option<string> ramOption, Option<string[]> deviceOption, Option<string> dirtyOption, out GuestSpec spec, out string error)
    {
        spec = null!;
        if (!ByteSize.TryParse(r.GetValue(ramOption), out var ram, out error))
        {
            error = "--ram: " + error;
            return false;
        }

        if (ram <= 0 || ram % 4096 != 0)
        {
            error = $"--ram {ram}: must be a positive multiple of 4 KiB";
            return false;
        }

        if (!ByteSize.TryParse(r.GetValue(dirtyOption), out var dirty, out error))
        {
            error = "--dirty-rate: " + error;
            return false;
        }

        var texts = r.GetValue(deviceOption) is { Length: > 0 } given
            ? given
            : ["vfio:gpu0:256MiB:dirty=1MiB", "vfio:gpu1:64MiB", "vmstate:net0"];
        var devices = new List<DeviceSpec>();
        var seed = 11;
        foreach (var t in texts.Where(t => t != "none"))
        {
            if (!DeviceOption.TryParse(t, seed++, out var d, out error))
            {
                return false;
            }

            devices.Add(d);
        }

        spec = new GuestSpec("vm1", ram, devices, dirty);
        try
        {
            spec.Validate();
            return true;
        }
        catch (ArgumentException e)
        {
            error = e.Message;
            return false;
        }
    }
}
