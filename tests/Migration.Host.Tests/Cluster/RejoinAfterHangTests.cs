using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Issue 10, points 2 and 3, with real node processes and faults from outside: a node hung by SIGSTOP for longer
/// than failure detection + stable-after is removed by Akka's split-brain resolver (keep-majority); after SIGCONT it
/// learns it was downed, rejoins by itself under the same name as a new incarnation, keeps the guest it runs
/// (`vm list` shows it again) and serves a new migration. The two-node case shows keep-majority's tie rule.
/// </summary>
public sealed class RejoinAfterHangTests(ITestOutputHelper log)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_node_hung_for_15_s_in_a_three_node_cluster_is_removed_then_rejoins_with_its_guest_and_migrates_it()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        var started = await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa), nodes.StartNodeAsync("C", pc, pa));
        var c = started[1];
        var seed = $"--seed 127.0.0.1:{pa}";
        await WaitForNodeAsync(seed, "C", up: true);
        var create = await NodeProcesses.CliAsync($"vm create {seed} --id hung1 --on C --ram 32MiB --device vfio:gpu0:4MiB --device vmstate:net0 --dirty-rate 4MiB", Timeout);
        Assert.True(create.Code == 0, create.Err + create.Out);

        await NodeProcesses.SignalAsync(c, "STOP");
        var stoppedAt = Stopwatch.StartNew();
        // The majority (A, B) removes C: failure detection (~3-4 s) + stable-after (4 s), well within the hang.
        await WaitForNodeAsync(seed, "C", up: false);
        var removedAfter = stoppedAt.Elapsed;
        var rest = TimeSpan.FromSeconds(15) - stoppedAt.Elapsed;
        if (rest > TimeSpan.Zero)
        {
            await Task.Delay(rest);
        }

        await NodeProcesses.SignalAsync(c, "CONT");
        var continuedAt = Stopwatch.StartNew();
        log.WriteLine($"C removed {removedAfter.TotalSeconds:0.0} s after SIGSTOP (seen through `nodes`)");

        // C learns it was downed (its ActorSystem terminates), starts a new incarnation at the same address, joins A/B.
        var output = await nodes.WaitForOutputAsync(c, "node C rejoined at", Timeout);
        Assert.Contains("node C removed from the cluster (downed); rejoining as incarnation 2 with 1 guest(s)", output);
        Assert.Contains($"node C rejoined at akka.tcp://mig@127.0.0.1:{pc} (incarnation 2) with 1 guest(s)", output);
        await WaitForNodeAsync(seed, "C", up: true);
        log.WriteLine($"C rejoined and Up {continuedAt.Elapsed.TotalSeconds:0.0} s after SIGCONT");

        // vm list shows the guest on C again, running, exactly once: listed `unconfirmed` (paused) until the new
        // incarnation's majority claim in the ownership record is confirmed, then running.
        var list = await CliUntilAsync($"vm list {seed}", o => o.Contains("│ running", StringComparison.Ordinal));
        var rows = list.Out.Split('\n').Where(l => l.Contains("hung1", StringComparison.Ordinal)).ToArray();
        Assert.True(rows.Length == 1, $"C was removed after {removedAfter.TotalSeconds:0.0} s; vm list: {list.Out}");
        Assert.Matches(@"hung1\s*│\s*C\s*│\s*running", rows[0]);

        // The new incarnation serves a migration of that guest (its devices and workload run).
        var json = Path.Combine(Path.GetTempPath(), $"mig-{Guid.NewGuid():N}.json");
        var migrate = await NodeProcesses.CliAsync($"migrate {seed} --vm hung1 --to A --json {json}", Timeout);
        Assert.True(migrate.Code == 0, migrate.Err + migrate.Out);
        var report = await File.ReadAllTextAsync(json);
        File.Delete(json);
        Assert.Contains("\"status\": \"completed\"", report);
        Assert.Contains("\"verified\": true", report);
    }

    [Fact]
    public async Task A_node_killed_with_SIGKILL_is_removed_by_the_majority_and_a_restarted_process_rejoins_under_the_same_name()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        var started = await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa), nodes.StartNodeAsync("C", pc, pa));
        var seed = $"--seed 127.0.0.1:{pb}";
        await WaitForNodeAsync(seed, "C", up: true);

        await NodeProcesses.SignalAsync(started[1], "KILL");
        var killedAt = Stopwatch.StartNew();
        await WaitForNodeAsync(seed, "C", up: false);
        log.WriteLine($"C removed {killedAt.Elapsed.TotalSeconds:0.0} s after SIGKILL (seen through `nodes`)");
        await WaitForNodeAsync(seed, "A", up: true);

        await nodes.StartNodeAsync("C", pc, pa);
        await WaitForNodeAsync(seed, "C", up: true);
        var create = await NodeProcesses.CliAsync($"vm create {seed} --id after-kill --on C --ram 16MiB --device vmstate:net0", Timeout);
        Assert.True(create.Code == 0, create.Err + create.Out);
    }

    [Fact]
    public async Task In_a_two_node_cluster_a_hang_of_the_lowest_address_node_downs_the_other_which_rejoins_when_it_is_back()
    {
        await using var nodes = new NodeProcesses();
        var (p1, p2) = (NodeProcesses.FreePort(), NodeProcesses.FreePort());
        var first = await nodes.StartNodeAsync("A", p1, null);
        var second = await nodes.StartNodeAsync("B", p2, p1);
        var seed1 = $"--seed 127.0.0.1:{p1}";
        await WaitForNodeAsync(seed1, "B", up: true);
        foreach (var (vm, on) in new[] { ("pair-a", "A"), ("pair-b", "B") })
        {
            var create = await NodeProcesses.CliAsync($"vm create {seed1} --id {vm} --on {on} --ram 16MiB --device vmstate:net0", Timeout);
            Assert.True(create.Code == 0, create.Err + create.Out);
        }

        // keep-majority on a 1-1 tie keeps the side with the lowest address (same host: the lower port).
        var (hung, other, otherName) = p1 < p2 ? (first, second, "B") : (second, first, "A");
        var otherSeed = $"--seed 127.0.0.1:{(p1 < p2 ? p2 : p1)}";
        await NodeProcesses.SignalAsync(hung, "STOP");
        try
        {
            // The healthy node is the one downed: it cannot tell a hang from a partition, and the tie goes to the lowest address.
            await nodes.WaitForOutputAsync(other, $"node {otherName} removed from the cluster (downed); rejoining as incarnation 2", Timeout);
        }
        finally
        {
            await NodeProcesses.SignalAsync(hung, "CONT");
        }

        // Once the hung node is back it removes the old incarnation and admits the new one, which kept its guest.
        await nodes.WaitForOutputAsync(other, $"node {otherName} rejoined at", Timeout);
        var list = await CliUntilAsync($"vm list {otherSeed}", o => o.Split('\n').Count(l => l.Contains("│ running", StringComparison.Ordinal)) >= 2);
        Assert.Matches(@"pair-a\s*│\s*A\s*│\s*running", list.Out);
        Assert.Matches(@"pair-b\s*│\s*B\s*│\s*running", list.Out);
    }

    /// <summary>Runs a read-only CLI command until it succeeds (a loaded machine may miss the CLI's ask timeout) and its
    /// output satisfies <paramref name="done"/> (bounded by <see cref="Timeout"/>; the last output is returned either way).</summary>
    private static async Task<(int Code, string Out, string Err)> CliUntilAsync(string arguments, Func<string, bool> done)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = await NodeProcesses.CliAsync(arguments, TimeSpan.FromSeconds(60));
            if (r.Code == 0 && done(r.Out) || sw.Elapsed > Timeout)
            {
                Assert.True(r.Code == 0, $"`{arguments}` exited {r.Code}: {r.Err}");
                return r;
            }

            await Task.Delay(500);
        }
    }

    /// <summary>Polls `nodes` until <paramref name="name"/> is listed Up and reachable (or, with up = false, is not listed at all).</summary>
    private static async Task WaitForNodeAsync(string seed, string name, bool up)
    {
        var sw = Stopwatch.StartNew();
        var last = "";
        while (sw.Elapsed < Timeout)
        {
            var r = await NodeProcesses.CliAsync($"nodes {seed}", TimeSpan.FromSeconds(30));
            last = r.Out + r.Err;
            if (r.Code == 0)
            {
                var row = r.Out.Split('\n').Select(l => l.Split('│').Select(c => c.Trim()).ToArray())
                    .FirstOrDefault(cells => cells.Length > 4 && cells[1] == name);
                if (up ? row is not null && row[3] == "Up" && row[4] == "yes" : row is null)
                {
                    return;
                }
            }

            await Task.Delay(500);
        }

        throw new TimeoutException($"node {name} never {(up ? "listed Up" : "removed")}: {last}");
    }
}
