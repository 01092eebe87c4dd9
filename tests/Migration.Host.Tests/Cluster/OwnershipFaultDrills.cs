using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// kill -9 and SIGSTOP (15 s) of the source and of the destination node process in every phase of a migration, and a
/// killed CLI, with three node processes (<see cref="FaultDrill"/> checks the outcome). The representative cases run in
/// every test run; the whole matrix is a separate command (README, "Fault drills"), as it takes about 40 minutes on
/// two cores.
/// </summary>
public sealed class OwnershipFaultDrills
{
    public static TheoryData<DrillTarget, DrillFault, string> Representative => new()
    {
        { DrillTarget.Destination, DrillFault.Kill, "committing" },
        { DrillTarget.Source, DrillFault.Kill, "committing" },
        { DrillTarget.Destination, DrillFault.Stop, "stop-copy" },
        { DrillTarget.Source, DrillFault.Kill, "precopy" },
    };

    public static TheoryData<DrillTarget, DrillFault, string> Rest()
    {
        var data = new TheoryData<DrillTarget, DrillFault, string>();
        foreach (var target in new[] { DrillTarget.Source, DrillTarget.Destination })
        {
            foreach (var fault in new[] { DrillFault.Kill, DrillFault.Stop })
            {
                foreach (var phase in new[] { "setup", "precopy", "stop-copy", "verifying", "committing" })
                {
                    if (!Representative.Any(r => (DrillTarget)r[0] == target && (DrillFault)r[1] == fault && (string)r[2] == phase))
                    {
                        data.Add(target, fault, phase);
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Representative))]
    public Task The_guest_ends_on_exactly_one_node_after_a_node_fault(DrillTarget target, DrillFault fault, string phase) =>
        FaultDrill.RunAsync(target, fault, phase);

    [DrillTheory]
    [MemberData(nameof(Rest))]
    public Task Drill_the_guest_ends_on_exactly_one_node_after_a_node_fault(DrillTarget target, DrillFault fault, string phase) =>
        FaultDrill.RunAsync(target, fault, phase);

    [Fact]
    public async Task A_killed_CLI_does_not_stop_its_migration()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa), nodes.StartNodeAsync("C", pc, pa));
        var seeds = $"--seed 127.0.0.1:{pa} --seed 127.0.0.1:{pb}";
        await FaultDrill.WaitForMembersAsync(seeds, 3);
        var created = await NodeProcesses.CliAsync($"vm create {seeds} --id drill --on A --ram 64MiB --device vfio:gpu0:32MiB:precopy=32MiB --dirty-rate 4MiB",
            TimeSpan.FromSeconds(60));
        Assert.True(created.Code == 0, created.Err + created.Out);

        // Not detached: the CLI follows the progress, and is killed while the migration is in precopy (held there for
        // 10 s or more: a device loading at 300 ms/MiB and a downtime limit that only the forced switchover ends).
        var cli = nodes.StartCli($"migrate {seeds} --vm drill --to B --device-budget 1MiB --chunk-size 256KiB --downtime-limit 0.001 --max-iterations 200 --inject slow-load:gpu0=300");
        var status = await FaultDrill.WaitForAsync(seeds, $"status {seeds}", o => o.Contains(" precopy ", StringComparison.Ordinal), "migration in precopy");
        cli.Kill(entireProcessTree: true);
        Assert.Contains("drill", status);

        await FaultDrill.WaitForAsync(seeds, $"status {seeds}", o => o.Contains(" completed ", StringComparison.Ordinal), "completed migration",
            TimeSpan.FromSeconds(180));
        var list = await FaultDrill.WaitForAsync(seeds, $"vm list {seeds}", o => FaultDrill.Rows(o).Count == 1, "one row");
        Assert.Equal([("B", "running")], FaultDrill.Rows(list));
    }
}
