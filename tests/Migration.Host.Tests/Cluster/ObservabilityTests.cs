using System.Globalization;
using System.Text.Json;
using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Two node processes with /metrics on and the CLI driving them: after a migration the families are all served and the
/// byte counters of both nodes equal the report's; ordinary CLI use leaves no ERROR line in either node's log, and a
/// node started with --log-format json writes nothing but JSON objects, one per line.
/// </summary>
public sealed class ObservabilityTests
{
    private static readonly string[] Families =
    [
        "migration_migrations_total", "migration_active", "migration_bytes_sent_total", "migration_bytes_received_total",
        "migration_dirty_pages_remaining", "migration_transfer_rate_bytes", "migration_downtime_seconds", "migration_device_buffer_bytes",
        "migration_device_buffer_budget_bytes", "migration_channel_reconnects_total", "migration_node_guests", "migration_node_memory_bytes",
    ];

    [Fact]
    public async Task Metrics_after_a_migration_have_every_family_and_byte_counters_equal_to_the_report_and_cli_use_logs_no_error()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, ma, mb) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        var a = await nodes.StartNodeAsync("A", pa, null, $"--metrics-port {ma}");
        var b = await nodes.StartNodeAsync("B", pb, pa, $"--metrics-port {mb} --log-format json");
        var seed = $"--seed 127.0.0.1:{pa}";
        var timeout = TimeSpan.FromSeconds(120);
        await WaitForTwoNodes(seed);

        var create = await NodeProcesses.CliAsync($"vm create {seed} --id m1 --on A --ram 64MiB --device vfio:gpu0:16MiB --device vmstate:net0 --dirty-rate 8MiB", timeout);
        Assert.True(create.Code == 0, create.Err + create.Out);
        var json = Path.Combine(Path.GetTempPath(), $"mig-{Guid.NewGuid():N}.json");
        var migrate = await NodeProcesses.CliAsync($"migrate {seed} --vm m1 --to B --json {json}", timeout);
        Assert.True(migrate.Code == 0, migrate.Err + migrate.Out);
        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        File.Delete(json);
        var r = report.RootElement;
        var id = r.GetProperty("migrationId").GetString();
        Assert.True(r.GetProperty("timeline").GetArrayLength() >= 2, "the report carries its timeline");

        // More ordinary CLI use: each command connects and disconnects.
        Assert.Equal(0, (await NodeProcesses.CliAsync($"nodes {seed}", timeout)).Code);
        Assert.Equal(0, (await NodeProcesses.CliAsync($"vm list {seed}", timeout)).Code);
        Assert.Equal(0, (await NodeProcesses.CliAsync($"status {seed}", timeout)).Code);
        Assert.Equal(3, (await NodeProcesses.CliAsync($"cancel {seed} 00000000", timeout)).Code);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var source = await http.GetStringAsync($"http://127.0.0.1:{ma}/metrics");
        var destination = await http.GetStringAsync($"http://127.0.0.1:{mb}/metrics");
        foreach (var family in Families)
        {
            Assert.Contains($"# TYPE {family} ", source);
            Assert.Contains($"# TYPE {family} ", destination);
        }

        var labels = $"migration=\"{id}\",guest=\"m1\"";
        Assert.Equal(r.GetProperty("ramWireBytes").GetInt64(), Value(source, $"migration_bytes_sent_total{{kind=\"ram\",{labels}}}"));
        Assert.Equal(r.GetProperty("deviceStateBytes").GetInt64(), Value(source, $"migration_bytes_sent_total{{kind=\"device\",{labels}}}"));
        Assert.Equal(r.GetProperty("ramTransferredBytes").GetInt64(), Value(destination, $"migration_bytes_received_total{{kind=\"ram\",{labels}}}"));
        Assert.Equal(r.GetProperty("deviceStateBytes").GetInt64(), Value(destination, $"migration_bytes_received_total{{kind=\"device\",{labels}}}"));
        Assert.Equal(1, Value(source, "migration_migrations_total{role=\"source\",result=\"completed\"}"));
        Assert.Equal(1, Value(destination, "migration_migrations_total{role=\"destination\",result=\"completed\"}"));
        Assert.Equal(1, Value(source, "migration_downtime_seconds_count"));
        Assert.Equal(0, Value(source, "migration_active{role=\"source\"}"));
        Assert.Equal(0, Value(source, "migration_node_guests"));
        Assert.Equal(1, Value(destination, "migration_node_guests"));
        Assert.Equal(64L << 20, Value(destination, "migration_node_memory_bytes{state=\"used\"}"));
        // The source's pool keeps the RAM the guest left behind (in quarantine for 10 s, then ready for the next one).
        Assert.Equal(64L << 20, Value(source, "migration_node_memory_bytes{state=\"pool\"}"));

        // The disconnects of those CLI processes reach the nodes a moment after they exit (longer on a loaded machine).
        await nodes.WaitForOutputAsync(a, "disconnected", TimeSpan.FromSeconds(30));
        var logA = nodes.Output(a);
        var logB = nodes.Output(b);
        Assert.DoesNotContain("ERROR", logA);
        Assert.DoesNotContain("ERROR", logB);
        Assert.Contains("member up:", logA);
        Assert.Contains($"migration {id} of guest m1", logA);
        Assert.Contains("ended: completed, verified True", logA);
        var lines = logB.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            Assert.True(entry.RootElement.TryGetProperty("level", out _), line);
            Assert.True(entry.RootElement.TryGetProperty("message", out _), line);
        }

        Assert.Contains(lines, l => l.Contains("guest m1 now runs on", StringComparison.Ordinal));
    }

    /// <summary>The value of one series line "NAME{LABELS} VALUE" of a scrape.</summary>
    private static long Value(string scrape, string series)
    {
        var line = scrape.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal))
                   ?? throw new Xunit.Sdk.XunitException($"no series {series} in:\n{scrape}");
        return (long)double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task WaitForTwoNodes(string seed)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var r = await NodeProcesses.CliAsync($"nodes {seed}", TimeSpan.FromSeconds(30));
            if (r.Code == 0 && r.Out.Split('\n').Count(l => l.Contains(" Up ", StringComparison.Ordinal)) >= 2)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("cluster of 2 not up: " + r.Out + r.Err);
            }

            await Task.Delay(500);
        }
    }
}
