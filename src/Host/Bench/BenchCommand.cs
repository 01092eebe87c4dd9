using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Migration.Actors.Settings;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;
using Spectre.Console;

namespace Migration.Host.Bench;

/// <summary>
/// `bench [--scenario NAME]... [--channels N] [--codec C] [--processes 1|2] [--json PATH] [--repeat N]`: runs named
/// migration scenarios (issue 5) and prints one row per migration. Exit 0 when every migration completed and
/// verified, 2 on a bad option, 1 otherwise.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var scenarios = new Option<string[]>("--scenario")
        {
            Description = $"Scenario to run (repeatable; default all): {string.Join(", ", BenchScenario.Names)}",
            AllowMultipleArgumentsPerToken = false,
        };
        var channels = new Option<int>("--channels") { Description = "Parallel TCP channels (1..64)", DefaultValueFactory = _ => 4 };
        var codec = new Option<string>("--codec") { Description = "RAM codec: none, zstd or lz4", DefaultValueFactory = _ => "none" };
        var processes = new Option<int>("--processes")
        {
            Description = "2: the destination node runs in a child process (as QEMU does); 1: both nodes in this process",
            DefaultValueFactory = _ => 2,
        };
        var json = new Option<string?>("--json") { Description = "Write {\"rows\": [...]} to this path" };
        var repeat = new Option<int>("--repeat") { Description = "Run the scenario list this many times", DefaultValueFactory = _ => 1 };
        var noWarmup = new Option<bool>("--no-warmup") { Description = "Skip the warm-up (a 64 MiB guest migrated there and back twice) before each measured migration" };
        var prefault = new Option<string?>("--prefault-destination")
        {
            Description = "Diagnostic: on|off overrides migration.prefault-destination (default: the reference configuration, on)",
        };
        var ramScale = new Option<double>("--ram-scale") { Hidden = true, DefaultValueFactory = _ => 1.0 };
        var destinationMemory = new Option<string>("--destination-memory")
        {
            Description = "fresh: the guest lands in new anonymous memory (default); warm: in memory the destination node populated before (its memory pool, pre-touched)",
            DefaultValueFactory = _ => "fresh",
        };
        var populateAhead = new Option<string?>("--populate-ahead")
        {
            Description = "Diagnostic: SIZE overrides the destination node's migration.populate-ahead (0 = off)",
        };
        var populateThreads = new Option<int?>("--populate-threads")
        {
            Description = "Diagnostic: N overrides the destination node's migration.populate-threads (0 = min(2, cores))",
        };
        var settle = new Option<double>("--settle")
        {
            Description = "Diagnostic: seconds to wait after creating the guest, before the measured migration, so that memory freed before " +
                          "(earlier runs, the warm-up) is reported free to the host and the destination lands on unbacked memory",
            DefaultValueFactory = _ => 0,
        };
        var freeBefore = new Option<string?>("--free-before")
        {
            Description = "Diagnostic: SIZE of memory the bench touches before creating the guest and frees just before the measured migration, " +
                          "so the destination's fresh memory is still backed by the host (as qemu-peer.sh's repetitions leave it for QEMU)",
        };
        var command = new Command("bench", "Run migration benchmark scenarios and print one row per scenario");
        foreach (var o in new Option[] { scenarios, channels, codec, processes, json, repeat, noWarmup, prefault, ramScale, destinationMemory,
                     populateAhead, populateThreads, settle, freeBefore })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (r, ct) =>
        {
            if (!TryCreateOptions(r.GetValue(scenarios) ?? [], r.GetValue(channels), r.GetValue(codec) ?? "none", r.GetValue(processes),
                    r.GetValue(json), r.GetValue(ramScale), r.GetValue(repeat), !r.GetValue(noWarmup), out var options, out var error))
            {
                await Console.Error.WriteLineAsync("error: " + error);
                return 2;
            }

            switch (r.GetValue(prefault)?.ToLowerInvariant())
            {
                case null:
                    break;
                case "on" or "true":
                    options = options with { PrefaultDestination = true };
                    break;
                case "off" or "false":
                    options = options with { PrefaultDestination = false };
                    break;
                default:
                    await Console.Error.WriteLineAsync($"error: --prefault-destination '{r.GetValue(prefault)}': expected on or off");
                    return 2;
            }

            switch (r.GetValue(destinationMemory)?.ToLowerInvariant())
            {
                case null or "fresh":
                    break;
                case "warm":
                    options = options with { WarmDestination = true };
                    break;
                default:
                    await Console.Error.WriteLineAsync($"error: --destination-memory '{r.GetValue(destinationMemory)}': expected fresh or warm");
                    return 2;
            }

            if (r.GetValue(populateAhead) is { } ahead)
            {
                if (!ByteSize.TryParse(ahead, out var aheadBytes, out var sizeError) || aheadBytes < 0)
                {
                    await Console.Error.WriteLineAsync($"error: --populate-ahead '{ahead}': {(sizeError.Length > 0 ? sizeError : "expected a size >= 0")}");
                    return 2;
                }

                options = options with { PopulateAhead = aheadBytes };
            }

            if (r.GetValue(populateThreads) is { } threads)
            {
                if (threads < 0 || threads > RamPopulator.MaxThreads)
                {
                    await Console.Error.WriteLineAsync($"error: --populate-threads {threads}: expected 0..{RamPopulator.MaxThreads} (0 = min(2, cores))");
                    return 2;
                }

                options = options with { PopulateThreads = threads };
            }

            if (r.GetValue(settle) is var pause and (< 0 or > 600))
            {
                await Console.Error.WriteLineAsync($"error: --settle {pause}: expected 0..600 seconds");
                return 2;
            }

            options = options with { Settle = TimeSpan.FromSeconds(r.GetValue(settle)) };
            if (r.GetValue(freeBefore) is { } free)
            {
                if (!ByteSize.TryParse(free, out var freeBytes, out var sizeError) || freeBytes <= 0)
                {
                    await Console.Error.WriteLineAsync($"error: --free-before '{free}': {(sizeError.Length > 0 ? sizeError : "expected a size > 0")}");
                    return 2;
                }

                options = options with { FreeBefore = freeBytes };
            }

            return await RunAsync(options, ct);
        });
        return command;
    }

    /// <summary>Validates the options; false with one message naming the bad value.</summary>
    public static bool TryCreateOptions(IReadOnlyList<string> scenarioNames, int channels, string codecName, int processes, string? json,
        double ramScale, int repeat, bool warmup, out BenchOptions options, out string error)
    {
        options = null!;
        if (!BenchScenario.TrySelect(scenarioNames, out var selected, out error))
        {
            return false;
        }

        if (!RamCodecRegistry.TryParse(codecName, out var codec))
        {
            error = $"--codec '{codecName}': expected none, zstd or lz4";
            return false;
        }

        if (processes is not (1 or 2))
        {
            error = $"--processes {processes}: expected 1 or 2";
            return false;
        }

        if (repeat is < 1 or > 100)
        {
            error = $"--repeat {repeat}: expected 1..100";
            return false;
        }

        if (!(ramScale > 0 && ramScale <= 1))
        {
            error = $"--ram-scale {ramScale}: expected a number in (0, 1]";
            return false;
        }

        options = new BenchOptions(selected, channels, codec, processes, json, ramScale, repeat, warmup);
        try
        {
            BenchRunner.Settings(options).Validate();
        }
        catch (ArgumentException e)
        {
            options = null!;
            error = e.Message.Replace("invalid migration setting: channels", "--channels", StringComparison.Ordinal);
            return false;
        }

        return true;
    }

    private static async Task<int> RunAsync(BenchOptions options, CancellationToken ct)
    {
        var started = DateTimeOffset.Now;
        Console.WriteLine(Machine(started));
        Console.WriteLine($"Scenarios: {string.Join(", ", options.Scenarios.Select(s => s.Name))}; {options.Channels} channels, codec " +
                          $"{RamCodecRegistry.Name(options.Codec)}, {options.Processes} process{(options.Processes == 1 ? "" : "es")}" +
                          (options.RamScale != 1 ? $", RAM scale {options.RamScale.ToString(CultureInfo.InvariantCulture)}" : "") +
                          (options.Warmup ? "" : ", no warm-up") +
                          $", destination memory {(options.WarmDestination ? "warm" : "fresh")}" +
                          (options.PrefaultDestination is { } pf ? $", DIAGNOSTIC prefault-destination = {(pf ? "on" : "off")}" : "") +
                          (options.PopulateAhead is { } pa ? $", DIAGNOSTIC populate-ahead = {ByteSize.Format(pa)}" : "") +
                          (options.PopulateThreads is { } pt ? $", DIAGNOSTIC populate-threads = {pt}" : "") +
                          (options.Settle > TimeSpan.Zero ? $", settle {options.Settle.TotalSeconds:0.#} s before each measured migration" : "") +
                          (options.FreeBefore is { } f ? $", {f >> 20} MiB touched and freed just before each measured migration" : ""));
        IReadOnlyList<BenchRow> rows;
        try
        {
            rows = await BenchRunner.RunAsync(options, Console.Out, ct);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or Akka.Actor.AskTimeoutException)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return 1;
        }

        Console.WriteLine();
        PrintTable(rows, options.Processes);
        if (options.JsonPath is { } path)
        {
            BenchJson.Write(rows, path);
            Console.WriteLine($"Rows written to {path}");
        }

        return rows.All(r => r.Status == "completed" && r.Verified) ? 0 : 1;
    }

    public static string Machine(DateTimeOffset when) => string.Create(CultureInfo.InvariantCulture,
        $"Machine: {Environment.ProcessorCount} CPUs, {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture}), " +
        $"{RuntimeInformation.FrameworkDescription}; {when:yyyy-MM-dd HH:mm:ss zzz}");

    public static void PrintTable(IReadOnlyList<BenchRow> rows, int processes)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var (name, right) in new[]
                 {
                     ("scenario", false), ("GiB", true), ("ch", true), ("codec", false), ("total s", true), ("GB/s", true),
                     ("downtime ms", true), ("CPU s src", true), ("CPU s dst", true), ("alloc MiB/GiB", true), ("steady MiB/GiB", true), ("gen2", true),
                     ("peak WS src", true), ("peak WS dst", true), ("dst beyond guest", true), ("of it growth", true), ("verified", false),
                 })
        {
            table.AddColumn(right ? new TableColumn(name).RightAligned() : new TableColumn(name));
        }

        foreach (var r in rows)
        {
            table.AddRow(
                Markup.Escape(r.Scenario),
                F(r.RamBytes / (double)(1L << 30), "0.##"),
                r.Channels.ToString(CultureInfo.InvariantCulture),
                r.Codec,
                F(r.TotalMs / 1000, "0.00"),
                F(r.GbPerSec, "0.00"),
                F(r.DowntimeMs, "0"),
                r.CpuSecondsSource is { } cs ? F(cs, "0.00") : "-",
                r.CpuSecondsDestination is { } cd ? F(cd, "0.00") : "-",
                F(r.AllocMiBPerGiB, "0.00"),
                r.SteadyAllocMiBPerGiB is { } sa ? F(sa, "0.00") + (r.SteadyGen2Collections > 0 ? $" ({r.SteadyGen2Collections} gen2)" : "") : "-",
                r.Gen2Collections.ToString(CultureInfo.InvariantCulture),
                r.PeakWorkingSetSourceBytes is { } ws ? ByteSize.Format(ws) : "-",
                r.PeakWorkingSetDestinationBytes is { } wd ? ByteSize.Format(wd) : "-",
                r.DestinationBeyondGuestBytes is { } b ? ByteSize.Format(b) : "-",
                r.DestinationGrowthBeyondGuestBytes is { } g ? ByteSize.Format(g) : "-",
                r.Verified ? "yes" : Markup.Escape("NO " + r.Status));
        }

        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 200);
        }

        AnsiConsole.Write(table);
        Console.WriteLine(processes == 1
            ? "One process: CPU and peak working set are the whole process (both nodes); allocation covers both nodes."
            : "Two processes: CPU src = this process (source node), CPU dst = the child (destination node); allocation = source only.");
        Console.WriteLine("total = the report's TotalMs (StartMigration to guest resumed on the destination, including setup); GB/s = guest RAM / total (1 GB = 10^9 B);");
        Console.WriteLine("steady = allocation during precopy only (first to last progress report of that phase) per GiB sent meanwhile;");
        Console.WriteLine("dst beyond guest = peak destination working set - guest RAM = the idle node (measured just before) + \"of it growth\" (what the migration added); see docs/benchmarks.md.");
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
