using System.Text.RegularExpressions;
using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// `set` and `switchover` against two real node processes, through the CLI (separate processes): a migration that
/// cannot converge is slowed and then changed and forced to finish; unknown and ended migrations get clear errors and
/// the documented exit codes (3 unknown, 5 ended, 2 bad value).
/// </summary>
public sealed class LiveChangeCliTests
{
    [Fact]
    public async Task Set_and_switchover_change_a_running_migration_and_refuse_unknown_or_ended_ones()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb) = (NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        await nodes.StartNodeAsync("B", pb, pa);
        var seed = $"--seed 127.0.0.1:{pa}";
        var timeout = TimeSpan.FromSeconds(120);
        await NodeProcesses.WaitForUpAsync(seed, 2);

        var unknownSet = await NodeProcesses.CliAsync($"set {seed} 0123abcd --downtime-limit 500", timeout);
        Assert.Equal(3, unknownSet.Code);
        Assert.Contains("unknown migration '0123abcd'", unknownSet.Err);
        var unknownSwitchover = await NodeProcesses.CliAsync($"switchover {seed} 0123abcd", timeout);
        Assert.Equal(3, unknownSwitchover.Code);

        var create = await NodeProcesses.CliAsync($"vm create {seed} --id web1 --on A --ram 64MiB --device vfio:gpu0:8MiB --dirty-rate 64MiB", timeout);
        Assert.True(create.Code == 0, create.Err + create.Out);
        // A limit no iteration meets, and a slow link: it keeps iterating until told otherwise.
        var started = await NodeProcesses.CliAsync($"migrate {seed} --vm web1 --to B --detach --downtime-limit 0.001 --max-iterations 10000 --max-bandwidth 32MiB", timeout);
        Assert.True(started.Code == 0, started.Err + started.Out);
        var id = Regex.Match(started.Out, "[0-9a-f]{8}-[0-9a-f-]{27}").Value;
        Assert.False(string.IsNullOrEmpty(id), started.Out);

        var bad = await NodeProcesses.CliAsync($"set {seed} {id} --auto-converge maybe", timeout);
        Assert.Equal(2, bad.Code);
        Assert.Contains("--auto-converge", bad.Err);

        var set = await NodeProcesses.CliAsync($"set {seed} {id} --max-bandwidth 0 --auto-converge on", timeout);
        Assert.True(set.Code == 0, set.Err + set.Out);
        Assert.Contains("max bandwidth unlimited", set.Out);
        Assert.Contains("auto-converge on", set.Out);

        var force = await NodeProcesses.CliAsync($"switchover {seed} {id}", timeout);
        Assert.True(force.Code == 0, force.Err + force.Out);
        Assert.Contains("switchover requested", force.Out);

        var status = await WaitForStatus(seed, id, "completed");
        // The table wraps its detail column at the terminal width: compare without whitespace and borders.
        Assert.Contains("switchoverforced-by-operator", Regex.Replace(status, @"[\s│]+", ""));

        var ended = await NodeProcesses.CliAsync($"switchover {seed} {id}", timeout);
        Assert.Equal(5, ended.Code);
        Assert.Contains("has ended", ended.Err);
        var endedSet = await NodeProcesses.CliAsync($"set {seed} {id} --downtime-limit 500", timeout);
        Assert.Equal(5, endedSet.Code);
    }

    private static async Task<string> WaitForStatus(string seed, string id, string state)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            var r = await NodeProcesses.CliAsync($"status {seed} {id}", TimeSpan.FromSeconds(30));
            if (r.Code == 0 && r.Out.Contains(state, StringComparison.Ordinal))
            {
                return r.Out;
            }

            Assert.True(DateTime.UtcNow < deadline, $"migration {id} not {state}: {r.Out}{r.Err}");
            await Task.Delay(500);
        }
    }
}
