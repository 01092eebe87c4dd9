using System.Diagnostics;
using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Devices.Workload;
using Migration.Host.Cli;
using Migration.Transport.Codecs;

namespace Migration.Host.Bench;

/// <summary>What `bench` runs (already validated).</summary>
public sealed record BenchOptions(
    IReadOnlyList<BenchScenario> Scenarios,
    int Channels = 4,
    CodecId Codec = CodecId.None,
    int Processes = 2,
    string? JsonPath = null,
    double RamScale = 1.0,
    int Repeat = 1,
    bool Warmup = true,
    bool? PrefaultDestination = null,
    bool WarmDestination = false,
    long? PopulateAhead = null,
    int? PopulateThreads = null,
    TimeSpan Settle = default,
    long? FreeBefore = null)
{
    /// <summary>The destination node's settings for this run: its memory mode plus the populate diagnostics, as `migration.` keys.</summary>
    public IReadOnlyDictionary<string, string> DestinationConfig(DestinationMemory memory)
    {
        var config = new Dictionary<string, string>(memory.NodeConfig);
        if (PopulateAhead is { } ahead)
        {
            config["populate-ahead"] = $"{ahead}B";
        }

        if (PopulateThreads is { } threads)
        {
            config["populate-threads"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return config;
    }
}

/// <summary>
/// Runs each scenario on a fresh pair of nodes: create the guest on the source (not timed), optionally warm up
/// the data path with a small guest migrated there and back, then migrate the guest once and measure.
/// </summary>
public static class BenchRunner
{
    private const double GiB = 1L << 30;
    private static int _guestCounter;

    public static async Task<IReadOnlyList<BenchRow>> RunAsync(BenchOptions options, TextWriter log, CancellationToken ct)
    {
        var rows = new List<BenchRow>();
        for (var rep = 0; rep < options.Repeat; rep++)
        {
            foreach (var scenario in options.Scenarios)
            {
                ct.ThrowIfCancellationRequested();
                await log.WriteLineAsync($"{scenario.Name}{(options.Repeat > 1 ? $" (run {rep + 1}/{options.Repeat})" : "")}: {scenario.Description}");
                var row = await RunScenarioAsync(scenario, options, log, ct);
                await log.WriteLineAsync($"  {row.Status}{(row.Verified ? " (verified)" : "")}: {row.TotalMs:0} ms, {row.GbPerSec:0.00} GB/s, downtime {row.DowntimeMs:0} ms" +
                                         (row.CpuSecondsDestination is { } dst ? $", CPU dst {dst:0.00} s (system {row.CpuSystemSecondsDestination:0.00})" : "") +
                                         (row.Error is null ? "" : $", error: {row.Error}"));
                rows.Add(row);
            }
        }

        return rows;
    }

    public static MigrationSettings Settings(BenchOptions options)
    {
        var s = MigrationSettings.FromConfig(NodeHost.ReferenceConfig()) with { Channels = options.Channels, Codec = options.Codec };
        return options.PrefaultDestination is { } p ? s with { PrefaultDestination = p } : s;
    }

    private static async Task<BenchRow> RunScenarioAsync(BenchScenario scenario, BenchOptions options, TextWriter log, CancellationToken ct)
    {
        var settings = Settings(options);
        var id = $"{scenario.Name}-{Interlocked.Increment(ref _guestCounter)}";
        var spec = scenario.ToSpec(id, options.RamScale);
        var destinationMemory = DestinationMemory.For(options.WarmDestination, spec.RamBytes);
        await using var pair = await NodePair.StartAsync(options.Processes, log, ct, options.DestinationConfig(destinationMemory));
        await destinationMemory.WaitReadyAsync(pair.DestinationNode, log, ct);
        if (options.Warmup)
        {
            await WarmupAsync(pair, scenario, settings, ct);
        }

        // --free-before: touched before the source guest's fill, so the fill does not take the memory it frees later.
        using var release = options.FreeBefore is { } free ? BackedMemoryRelease.Touch(free) : null;
        var create = Stopwatch.StartNew();
        await CreateAsync(pair.Source.Node, pair.Source.System, spec, ct);
        await log.WriteLineAsync($"  guest {id} created in {create.Elapsed.TotalSeconds:0.0} s (not timed)");
        if (options.Settle > TimeSpan.Zero)
        {
            // Free page reporting hands memory freed >= ~2 s ago back to the host (docs/benchmarks.md): after this
            // pause nothing large was freed recently, so the destination's first touches find unbacked memory.
            await Task.Delay(options.Settle, ct);
        }

        // Freed now, well within the ~2 s before the balloon reports it (BackedMemoryRelease), and before the baselines.
        release?.Dispose();

        // Baselines, taken on a collected heap so earlier garbage does not trigger collections inside the run.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        var (poolHeld, reusedBefore) = await DestinationMemory.PoolAsync(pair.DestinationNode, ct);
        pair.Child?.Refresh();
        var idleChild = pair.Child?.WorkingSet64 - poolHeld;
        var idleChildPrivate = pair.Child is { } idle && PrivateMemory.Of(idle.Id) is { } idlePrivate ? idlePrivate - poolHeld : (long?)null;
        var cpuSelf0 = self.TotalProcessorTime;
        var cpuChild0 = pair.Child?.TotalProcessorTime;
        var sysChild0 = pair.Child?.PrivilegedProcessorTime;
        var gen2Before = GC.CollectionCount(2);
        var allocBefore = GC.GetTotalAllocatedBytes(true);
        using var sampler = new WorkingSetSampler(pair.Child);

        var steady = new SteadyStateProbe(() => sampler.SamplerAllocatedBytes);
        var report = await MigrateAsync(pair.Source.Node, pair.Source.System, spec.Id, pair.DestinationAddress, settings, TimeSpan.FromMinutes(10), ct, steady);

        sampler.Stop();
        var (heldAfter, reusedAfter) = await DestinationMemory.PoolAsync(pair.DestinationNode, ct);
        var reused = reusedAfter - reusedBefore;
        // The pool may have been trimmed meanwhile (a guest admitted near capacity): count only what it still holds.
        var poolSpare = Math.Max(0, Math.Min(poolHeld - reused, heldAfter));
        var allocated = GC.GetTotalAllocatedBytes(true) - allocBefore - sampler.SamplerAllocatedBytes;
        var gen2 = GC.CollectionCount(2) - gen2Before;
        self.Refresh();
        var cpuSelf = (self.TotalProcessorTime - cpuSelf0).TotalSeconds;
        double? cpuChild = null;
        double? sysChild = null;
        if (pair.Child is { } c && cpuChild0 is { } c0 && sysChild0 is { } s0)
        {
            c.Refresh();
            cpuChild = (c.TotalProcessorTime - c0).TotalSeconds;
            sysChild = (c.PrivilegedProcessorTime - s0).TotalSeconds;
        }

        var ramBytes = report.RamBytes > 0 ? report.RamBytes : spec.RamBytes;
        return new BenchRow
        {
            Scenario = scenario.Name,
            Channels = settings.Channels,
            Codec = RamCodecRegistry.Name(settings.Codec),
            Processes = options.Processes,
            PrefaultDestination = settings.PrefaultDestination,
            RamBytes = ramBytes,
            TotalMs = report.TotalMs,
            DowntimeMs = report.DowntimeMs,
            CpuSecondsSource = cpuSelf,
            CpuSecondsDestination = cpuChild,
            CpuSystemSecondsDestination = sysChild,
            PopulateAheadBytes = options.PopulateAhead,
            FreedBeforeBytes = options.FreeBefore,
            PopulateThreads = options.PopulateThreads,
            AllocMiBPerGiB = allocated / (double)(1 << 20) / (ramBytes / GiB),
            Gen2Collections = gen2,
            PeakWorkingSetSourceBytes = sampler.PeakSelf,
            PeakWorkingSetDestinationBytes = pair.Child is null ? null : sampler.PeakChild,
            PeakPrivateDestinationBytes = pair.Child is null ? null : sampler.PeakChildPrivate,
            IdlePrivateDestinationBytes = idleChildPrivate,
            Verified = report.Verified,
            Status = report.Status,
            SetupMs = report.SetupMs,
            Iterations = report.Iterations,
            ForcedSwitchover = report.ForcedSwitchover,
            DeviceStateBytes = scenario.DeviceStateBytes(options.RamScale),
            DeviceBufferBudgetBytes = report.DeviceBufferBudgetBytes,
            WireBytes = report.WireBytes,
            NormalPages = report.NormalPages,
            UncompressedPages = report.UncompressedPages,
            IdleWorkingSetDestinationBytes = idleChild,
            SteadyAllocMiBPerGiB = steady.MiBPerGiB,
            SteadyGen2Collections = steady.Gen2,
            DestinationMemory = options.WarmDestination ? "warm" : "fresh",
            DestinationPoolReusedBytes = reused,
            DestinationPoolHeldBytes = poolHeld,
            DestinationPoolSpareBytes = poolSpare,
            AllocMiBPerGiBDestination = report.DestinationAllocatedBytes is { } da ? da / (double)(1 << 20) / (ramBytes / GiB) : null,
            SteadyAllocMiBPerGiBDestination = report.DestinationSteadyAllocMiBPerGiB,
            Error = report.Error,
        };
    }

    /// <summary>
    /// JIT-compiles and warms both data paths (the nodes are long-running in real use): a 64 MiB guest, with a
    /// small device when the scenario has devices, migrated to the destination and back, so nothing of it stays there.
    /// </summary>
    private static async Task WarmupAsync(NodePair pair, BenchScenario scenario, MigrationSettings settings, CancellationToken ct)
    {
        var id = $"warmup-{Interlocked.Increment(ref _guestCounter)}";
        IReadOnlyList<DeviceSpec> devices = scenario.Devices.Count == 0 ? [] : [new DeviceSpec("warm0", DeviceKind.Vfio, 0, 8L << 20, 4L << 20, 3)];
        var spec = new GuestSpec(id, 64L << 20, devices, 0, scenario.Fill == RamFillPattern.Zero ? RamFillPattern.Mixed : scenario.Fill, 9);
        await CreateAsync(pair.Source.Node, pair.Source.System, spec, ct);
        for (var round = 1; round <= WarmupRounds; round++)
        {
            var there = await MigrateAsync(pair.Source.Node, pair.Source.System, id, pair.DestinationAddress, settings, TimeSpan.FromMinutes(2), ct);
            Check(there, $"warm-up migration {round} to the destination");
            var back = await MigrateAsync(pair.DestinationNode, pair.Source.System, id, pair.Source.Address, settings, TimeSpan.FromMinutes(2), ct);
            Check(back, $"warm-up migration {round} back to the source");
            // The runtime counts calls for tier-1 compilation only once new tier-0 compilations paused for 100 ms:
            // in the first round (a fresh process) nothing is counted, so the hot path was compiled at tier 1
            // inside the measured migration (perf: 0.5-0.8 CPU-s of the source's, on the JIT's thread). The
            // pause lets counting start; the second round gets the data path to tier 1 before the measurement.
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
        }
    }

    /// <summary>Warm-up round trips of the warm-up guest before the measured migration (see WarmupAsync).</summary>
    public const int WarmupRounds = 2;

    private static void Check(MigrationReport r, string what)
    {
        if (r.Status != "completed" || !r.Verified)
        {
            throw new InvalidOperationException($"{what} did not complete: {r.Status} {r.Error}");
        }
    }

    private static async Task CreateAsync(IActorRef node, ActorSystem sourceSystem, GuestSpec spec, CancellationToken ct)
    {
        var created = await SourceNodeGuard.UnlessTerminated(sourceSystem, node.Ask<object>(new CreateGuest(spec), TimeSpan.FromMinutes(5), ct), $"creating guest {spec.Id}");
        if (created is not GuestCreated)
        {
            throw new InvalidOperationException($"cannot create guest {spec.Id}: {(created as CommandFailed)?.Reason ?? created.ToString()}");
        }
    }

    private static async Task<MigrationReport> MigrateAsync(IActorRef fromNode, ActorSystem subscriberSystem, string vmId, string toAddress,
        MigrationSettings settings, TimeSpan timeout, CancellationToken ct, SteadyStateProbe? probe = null)
    {
        var watcher = new BenchWatcher(subscriberSystem, probe);
        try
        {
            var started = await SourceNodeGuard.UnlessTerminated(subscriberSystem,
                fromNode.Ask<object>(new StartMigration(vmId, toAddress, settings, watcher.Actor), TimeSpan.FromSeconds(30), ct), $"starting the migration of {vmId}");
            if (started is not MigrationStarted)
            {
                throw new InvalidOperationException($"cannot migrate {vmId}: {(started as CommandFailed)?.Reason ?? started.ToString()}");
            }

            return await SourceNodeGuard.UnlessTerminated(subscriberSystem, watcher.Finished.WaitAsync(timeout, ct), $"migrating {vmId}");
        }
        finally
        {
            subscriberSystem.Stop(watcher.Actor);
        }
    }
}
