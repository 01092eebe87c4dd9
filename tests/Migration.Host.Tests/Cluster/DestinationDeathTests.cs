using System.Diagnostics;
using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// The destination node process is killed mid-migration (in precopy, and in stop-copy while the guest is stopped):
/// the migration fails, the guest keeps running on the source, and status says why. Three nodes, so that the survivors
/// are a majority.
/// </summary>
public sealed class DestinationDeathTests
{
    [Theory]
    [InlineData("precopy")]
    [InlineData("stop-copy")]
    public async Task Killing_the_destination_leaves_the_guest_running_on_the_source(string phase)
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb) = (NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        // A third node: with keep-majority downing, A and C are the majority that removes B (two nodes have none).
        var bc = await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa), nodes.StartNodeAsync("C", NodeProcesses.FreePort(), pa));
        var b = bc[0];
        var seed = $"--seed 127.0.0.1:{pa}";
        var timeout = TimeSpan.FromSeconds(120); // three node processes on a loaded machine

        // A slowly loading device keeps the chosen phase busy for seconds: in precopy its precopy data trickles
        // through credit; with precopy=0 and 3 iterations at most, the whole state loads during stop-copy.
        var device = phase == "precopy" ? "vfio:gpu0:32MiB:precopy=32MiB" : "vfio:gpu0:32MiB:precopy=0";
        var convergence = phase == "precopy" ? "--downtime-limit 0.001 --max-iterations 10000" : "--max-iterations 3";
        var create = await NodeProcesses.CliAsync($"vm create {seed} --id vm-{phase} --on A --ram 64MiB --device {device} --dirty-rate 4MiB", timeout);
        Assert.True(create.Code == 0, create.Err);
        var started = await NodeProcesses.CliAsync(
            $"migrate {seed} --vm vm-{phase} --to B --detach {convergence} --device-budget 1MiB --chunk-size 256KiB --inject slow-load:gpu0=300", timeout);
        Assert.True(started.Code == 0, started.Err);
        var id = started.Out.Trim();

        await WaitForStatus(seed, id, phase, timeout);
        b.Kill(entireProcessTree: true);

        var status = await WaitForStatus(seed, id, "failed", timeout);
        Assert.Contains("failed", status);
        var list = await NodeProcesses.CliAsync($"vm list {seed}", timeout);
        var row = list.Out.Split('\n').Single(l => l.Contains($"vm-{phase}", StringComparison.Ordinal));
        Assert.Matches(@"\s*│\s*A\s*│\s*running", row);
    }

    private static async Task<string> WaitForStatus(string seed, string id, string state, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        var last = "";
        while (sw.Elapsed < timeout)
        {
            var r = await NodeProcesses.CliAsync($"status {seed} {id}", TimeSpan.FromSeconds(30));
            last = r.Out + r.Err;
            if (r.Code == 0 && last.Contains($" {state} ", StringComparison.Ordinal))
            {
                return last;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"migration {id} never reached {state}: {last}");
    }
}
