using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// A destination sets its own limits (node processes, scripted through the CLI): a device buffer budget larger than
/// its max-device-buffer-budget is capped (the report shows the budget granted), a chunk larger than that cap is
/// refused with a clear reason and the guest stays on its source, and a slow-load given to one migration does not
/// follow the guest into the next one.
/// </summary>
public sealed class DestinationLimitsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task An_oversized_budget_is_capped_a_chunk_above_the_cap_is_refused_and_slow_load_stays_with_its_migration()
    {
        var dir = Directory.CreateTempSubdirectory("migration-limits-").FullName;
        try
        {
            var capped = Path.Combine(dir, "capped.conf");
            await File.WriteAllTextAsync(capped, "migration.max-device-buffer-budget = 2MiB\n");
            await using var nodes = new NodeProcesses();
            var (pa, pb) = (NodeProcesses.FreePort(), NodeProcesses.FreePort());
            await nodes.StartNodeAsync("A", pa, null);
            await nodes.StartNodeAsync("B", pb, pa, $"--config {capped}");
            var seed = $"--seed 127.0.0.1:{pa}";
            await NodeProcesses.WaitForUpAsync(seed, 2);
            var create = await NodeProcesses.CliAsync($"vm create {seed} --id lim1 --on A --ram 32MiB --device vfio:gpu0:4MiB --dirty-rate 2MiB", Timeout);
            Assert.True(create.Code == 0, create.Err + create.Out);

            // 1 GiB asked, 2 MiB granted: the migration follows the granted budget and verifies.
            var json = Path.Combine(dir, "report.json");
            var toB = await NodeProcesses.CliAsync($"migrate {seed} --vm lim1 --to B --device-budget 1GiB --chunk-size 256KiB --inject slow-load:gpu0=5 --json {json}", Timeout);
            Assert.True(toB.Code == 0, toB.Err + toB.Out);
            var report = await File.ReadAllTextAsync(json);
            Assert.Contains("\"verified\": true", report);
            Assert.Contains("\"deviceBufferBudgetBytes\": 2097152", report);

            // Back to A without --inject: completes (B's copy of the guest never took the injected delay as its own).
            var toA = await NodeProcesses.CliAsync($"migrate {seed} --vm lim1 --to A --json {json}", Timeout);
            Assert.True(toA.Code == 0, toA.Err + toA.Out);
            Assert.Contains("\"verified\": true", await File.ReadAllTextAsync(json));

            // A chunk that cannot fit B's cap is refused at prepare; the guest keeps running on A.
            var refused = await NodeProcesses.CliAsync($"migrate {seed} --vm lim1 --to B --chunk-size 4MiB --device-budget 8MiB", Timeout);
            Assert.Equal(1, refused.Code);
            Assert.Contains("chunk-size = 4194304 bytes exceeds this node's max-device-buffer-budget = 2097152 bytes", refused.Err);
            var list = await NodeProcesses.CliAsync($"vm list {seed}", Timeout);
            Assert.Matches(@"lim1\s*│\s*A\s*│\s*running", list.Out);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
