using System.CommandLine;
using System.Text.Json;
using Migration.Host.Bench;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Host.Tests.Bench;

public sealed class BenchOptionTests
{
    private static bool Parse(string[] scenarios, out BenchOptions options, out string error, int channels = 4, string codec = "none", int processes = 2) =>
        BenchCommand.TryCreateOptions(scenarios, channels, codec, processes, null, 1.0, 1, true, out options, out error);

    [Fact]
    public void No_scenario_means_all_with_the_issue_defaults()
    {
        var root = new RootCommand { BenchCommand.Create() };
        var parsed = root.Parse(["bench"]);
        Assert.Empty(parsed.Errors);
        Assert.True(Parse([], out var o, out var error), error);
        Assert.Equal(BenchScenario.Default.Select(s => s.Name), o.Scenarios.Select(s => s.Name));
        Assert.DoesNotContain("random-8g", o.Scenarios.Select(s => s.Name)); // 8 GiB per node: only when named
        Assert.Equal(4, o.Channels);
        Assert.Equal(CodecId.None, o.Codec);
        Assert.Equal(2, o.Processes);
        Assert.Contains("random-2g", o.Scenarios.Select(s => s.Name));
        Assert.Contains("zero-2g", o.Scenarios.Select(s => s.Name));
        Assert.Contains("zero90-2g", o.Scenarios.Select(s => s.Name));
        Assert.Contains("dirty-1g", o.Scenarios.Select(s => s.Name));
    }

    [Fact]
    public void Devices_selects_both_device_rows_in_catalogue_order()
    {
        Assert.True(Parse(["devices", "random-2g"], out var o, out var error), error);
        Assert.Equal(["random-2g", "devices-precopy", "devices-switchover"], o.Scenarios.Select(s => s.Name));
    }

    [Fact]
    public void Scenarios_have_the_sizes_of_the_issue()
    {
        var precopy = BenchScenario.All.Single(s => s.Name == "devices-precopy");
        var switchover = BenchScenario.All.Single(s => s.Name == "devices-switchover");
        Assert.Equal(1L << 30, precopy.RamBytes);
        Assert.Equal([256L << 20, 256L << 20], precopy.Devices.Select(d => d.StateBytes));
        Assert.All(precopy.Devices, d => Assert.True(d.PrecopyBytes > 0));
        Assert.All(switchover.Devices, d => Assert.Equal(0, d.PrecopyBytes));
        Assert.Equal(256L << 20, BenchScenario.All.Single(s => s.Name == "dirty-1g").DirtyRateBytesPerSecond);
        Assert.Equal(2L << 30, BenchScenario.All.Single(s => s.Name == "random-2g").RamBytes);
    }

    [Fact]
    public void Random_8g_is_an_idle_8_GiB_random_guest_run_when_named()
    {
        Assert.True(Parse(["random-8g"], out var o, out var error), error);
        var s = Assert.Single(o.Scenarios);
        Assert.Equal(8L << 30, s.RamBytes);
        Assert.Equal(0, s.DirtyRateBytesPerSecond);
        Assert.Equal(Migration.Devices.Workload.RamFillPattern.Random, s.Fill);
    }

    [Fact]
    public void Destination_memory_fresh_turns_the_pool_off_and_warm_populates_the_guest_and_the_warm_up_guest()
    {
        var fresh = DestinationMemory.For(warm: false, 2L << 30);
        Assert.Equal("off", fresh.NodeConfig["memory-pool.enabled"]);
        Assert.Equal(0, fresh.ReadyBytes);
        var warm = DestinationMemory.For(warm: true, 2L << 30);
        Assert.Equal((2L << 30) + (BenchRunner.WarmupRounds * (64L << 20)), warm.ReadyBytes); // each warm-up round trip takes 64 MiB
        Assert.Equal($"{warm.ReadyBytes}B", warm.NodeConfig["memory-pool.populate"]);
        var root = new RootCommand { BenchCommand.Create() };
        Assert.Empty(root.Parse(["bench", "--destination-memory", "warm"]).Errors);
    }

    [Fact]
    public void An_unknown_scenario_is_refused_with_a_clear_message()
    {
        Assert.False(Parse(["random-3g"], out _, out var error));
        Assert.Contains("random-3g", error);
        Assert.Contains("random-2g", error); // lists the valid names
    }

    [Theory]
    [InlineData("--scenario", "nope")]
    [InlineData("--processes", "3")]
    [InlineData("--codec", "gzip")]
    [InlineData("--channels", "0")]
    [InlineData("--free-before", "0")]
    [InlineData("--free-before", "lots")]
    public async Task Bad_options_exit_with_code_2(string option, string value)
    {
        var root = new RootCommand { BenchCommand.Create() };
        var stderr = new StringWriter();
        var previous = Console.Error;
        Console.SetError(stderr);
        try
        {
            var code = await root.Parse(["bench", option, value]).InvokeAsync();
            Assert.Equal(2, code);
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.StartsWith("error: ", stderr.ToString());
        Assert.Contains(value, stderr.ToString());
    }
}

public sealed class BackedMemoryReleaseTests
{
    [Fact]
    public void Touch_backs_every_page_and_dispose_gives_them_back()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        const long size = 64L << 20;
        var pid = Environment.ProcessId;
        var before = PrivateMemory.Of(pid)!.Value;
        var release = BackedMemoryRelease.Touch(size)!;
        var touched = PrivateMemory.Of(pid)!.Value;
        release.Dispose();
        var after = PrivateMemory.Of(pid)!.Value;
        release.Dispose(); // idempotent

        // Other threads of the test host allocate meanwhile: allow them 16 MiB either way.
        Assert.InRange(touched - before, size - (16L << 20), size + (16L << 20));
        Assert.InRange(touched - after, size - (16L << 20), size + (16L << 20));
    }
}

public sealed class BenchJsonTests
{
    private static readonly string[] Required =
    [
        "scenario", "channels", "codec", "processes", "ramBytes", "totalMs", "gbPerSec", "downtimeMs", "cpuSecondsSource",
        "cpuSecondsDestination", "allocMiBPerGiB", "gen2Collections", "peakWorkingSetSourceBytes", "peakWorkingSetDestinationBytes", "verified",
    ];

    [Fact]
    public void Rows_are_written_under_rows_with_the_exact_field_names()
    {
        var row = new BenchRow
        {
            Scenario = "random-2g", Channels = 4, Codec = "none", Processes = 1, RamBytes = 2L << 30, TotalMs = 1000, DowntimeMs = 12.5,
            CpuSecondsSource = 1.5, CpuSecondsDestination = null, AllocMiBPerGiB = 0.25, Gen2Collections = 0,
            PeakWorkingSetSourceBytes = 3L << 30, PeakWorkingSetDestinationBytes = null, Verified = true, Status = "completed",
            NormalPages = 524288, UncompressedPages = 1000,
        };
        using var doc = JsonDocument.Parse(BenchJson.Serialize([row, row with { Scenario = "zero-2g" }]));
        var rows = doc.RootElement.GetProperty("rows");
        Assert.Equal(JsonValueKind.Array, rows.ValueKind);
        Assert.Equal(2, rows.GetArrayLength());
        var r = rows[0];
        var names = r.EnumerateObject().Select(p => p.Name).ToHashSet();
        Assert.All(Required, n => Assert.Contains(n, names));
        Assert.Equal("random-2g", r.GetProperty("scenario").GetString());
        Assert.Equal(2L << 30, r.GetProperty("ramBytes").GetInt64());
        Assert.Equal(2.1475, r.GetProperty("gbPerSec").GetDouble(), 3); // 2 GiB / 1 s in 10^9 B/s
        Assert.Equal(JsonValueKind.Null, r.GetProperty("cpuSecondsDestination").ValueKind);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("peakWorkingSetDestinationBytes").ValueKind);
        Assert.True(r.GetProperty("verified").GetBoolean());
        Assert.Equal(524288, r.GetProperty("normalPages").GetInt64());
        Assert.Equal(1000, r.GetProperty("uncompressedPages").GetInt64());
        Assert.Equal("zero-2g", rows[1].GetProperty("scenario").GetString());
        Assert.Single(doc.RootElement.EnumerateObject());
    }

    [Fact]
    public void Destination_memory_beyond_guest_is_reported_with_the_idle_node_and_the_migration_growth_apart()
    {
        var row = new BenchRow
        {
            Scenario = "devices-precopy", Channels = 4, Codec = "none", Processes = 2, RamBytes = 1L << 30, TotalMs = 1000,
            PeakWorkingSetDestinationBytes = (1L << 30) + (180L << 20), IdleWorkingSetDestinationBytes = 112L << 20,
            Verified = true, Status = "completed",
        };
        using var doc = JsonDocument.Parse(BenchJson.Serialize([row, row with { IdleWorkingSetDestinationBytes = null }]));
        var rows = doc.RootElement.GetProperty("rows");
        Assert.Equal(180L << 20, rows[0].GetProperty("destinationBeyondGuestBytes").GetInt64());
        Assert.Equal(112L << 20, rows[0].GetProperty("idleWorkingSetDestinationBytes").GetInt64());
        Assert.Equal(68L << 20, rows[0].GetProperty("destinationGrowthBeyondGuestBytes").GetInt64());
        // Without an idle reading (one process) the growth is unknown, not the whole figure.
        Assert.Equal(JsonValueKind.Null, rows[1].GetProperty("destinationGrowthBeyondGuestBytes").ValueKind);
    }

    [Fact]
    public void A_warm_destination_counts_the_pool_the_guest_did_not_take_neither_as_idle_node_nor_as_beyond_guest()
    {
        // The pool held guest RAM + 128 MiB before; the guest took 1 GiB of it, 128 MiB stayed spare. Peak = node 112 + growth 40 + guest 1 GiB + spare 128.
        var row = new BenchRow
        {
            Scenario = "random-2g", Channels = 4, Codec = "none", Processes = 2, RamBytes = 1L << 30, TotalMs = 1000,
            DestinationPoolHeldBytes = (1L << 30) + (128L << 20), DestinationPoolReusedBytes = 1L << 30, DestinationPoolSpareBytes = 128L << 20,
            IdleWorkingSetDestinationBytes = 112L << 20,
            PeakWorkingSetDestinationBytes = (1L << 30) + ((112L + 40 + 128) << 20),
            Verified = true, Status = "completed",
        };
        Assert.Equal(152L << 20, row.DestinationBeyondGuestBytes);
        Assert.Equal(40L << 20, row.DestinationGrowthBeyondGuestBytes);
    }

    [Fact]
    public void Write_creates_the_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}", "rows.json");
        try
        {
            BenchJson.Write([], path);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            Assert.Equal(0, doc.RootElement.GetProperty("rows").GetArrayLength());
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, true);
        }
    }
}

public sealed class BenchRunTests
{
    [Fact]
    public async Task A_small_random_guest_migrates_in_one_process_and_yields_a_plausible_row()
    {
        Assert.True(BenchCommand.TryCreateOptions(["random-2g"], 2, "none", 1, null, 1.0 / 32, 1, false, out var options, out var error), error);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var rows = await BenchRunner.RunAsync(options, TextWriter.Null, cts.Token);
        var row = Assert.Single(rows);
        Assert.Equal("random-2g", row.Scenario);
        Assert.True(row.Verified, row.Error ?? row.Status);
        Assert.Equal(64L << 20, row.RamBytes);
        Assert.Equal(2, row.Channels);
        Assert.Equal(1, row.Processes);
        Assert.InRange(row.TotalMs, 1, 60_000);
        Assert.True(row.GbPerSec > 0);
        Assert.InRange(row.DowntimeMs, 0, row.TotalMs);
        Assert.True(row.CpuSecondsSource > 0);
        Assert.Null(row.CpuSecondsDestination);
        Assert.Null(row.PeakWorkingSetDestinationBytes);
        Assert.True(row.PeakWorkingSetSourceBytes >= row.RamBytes, "both guests' RAM is mapped in this process");
        Assert.True(row.AllocMiBPerGiB >= 0);
        Assert.Equal("fresh", row.DestinationMemory);
        Assert.Equal(0, row.DestinationPoolReusedBytes);
        Assert.NotNull(row.AllocMiBPerGiBDestination); // the destination's own figure, from its report
    }

    [Fact]
    public async Task A_warm_destination_receives_the_guest_into_memory_its_pool_populated_before()
    {
        Assert.True(BenchCommand.TryCreateOptions(["random-2g"], 2, "none", 1, null, 1.0 / 32, 1, true, out var options, out var error), error);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        var rows = await BenchRunner.RunAsync(options with { WarmDestination = true }, TextWriter.Null, cts.Token);
        var row = Assert.Single(rows);
        Assert.True(row.Verified, row.Error ?? row.Status);
        Assert.Equal("warm", row.DestinationMemory);
        // The measured guest, not only the warm-up guest, landed in the populated memory.
        Assert.True(row.DestinationPoolReusedBytes >= row.RamBytes, $"{row.DestinationPoolReusedBytes} bytes reused for a {row.RamBytes}-byte guest");
    }
}
