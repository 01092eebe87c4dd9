using System.Diagnostics;
using Migration.Actors.Drain;
using Migration.Actors.Messages;
using Migration.Host.Cli;
using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Host drain with real node processes: `drain --node B --max-parallel 2` of three guests returns at once (the drain runs
/// in the cluster singleton, not in the CLI), moves every guest off B with at most two migrations at once (checked from
/// the source node's own migration list, sampled while the drain runs, and from the drain's record of start/end times),
/// the cordoned B refuses an incoming migration and a new guest with exit 5, and `uncordon` lifts it.
/// </summary>
[Collection(DrainTestCluster.Collection)]
public sealed class DrainTests
{
    [Fact]
    public async Task Draining_a_node_of_three_guests_with_max_parallel_2_runs_at_most_two_at_once_and_cordons_it_until_uncordon()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa), nodes.StartNodeAsync("C", pc, pa));
        var seed = $"--seed 127.0.0.1:{pa}";
        var timeout = TimeSpan.FromSeconds(120);
        await using var client = ClusterClient.Connect([$"127.0.0.1:{pa}"]);
        var b = (await DrainTestCluster.WaitForNodesAsync(client, 3)).Single(n => n.Name == "B");

        // Each migration lasts seconds: its device loads slowly on the destination (200 ms per MiB of 16 MiB), so
        // migrations started together overlap, and a third one started too early would be seen running with them.
        foreach (var vm in new[] { "g1", "g2", "g3" })
        {
            var created = await NodeProcesses.CliAsync($"vm create {seed} --id {vm} --on B --ram 64MiB --device vfio:gpu0:16MiB --dirty-rate 2MiB", timeout);
            Assert.True(created.Code == 0, created.Err + created.Out);
        }

        var probe = await NodeProcesses.CliAsync($"vm create {seed} --id probe --on A --ram 64MiB", timeout);
        Assert.True(probe.Code == 0, probe.Err + probe.Out);

        // Sample B's own migration list while the drain runs: how many of its migrations had not ended at once.
        using var stopSampling = new CancellationTokenSource();
        var sampler = SampleConcurrencyAsync(client, b.Address, stopSampling.Token);

        var drain = await NodeProcesses.CliAsync(
            $"drain {seed} --node B --max-parallel 2 --device-budget 1MiB --chunk-size 256KiB --inject slow-load:gpu0=200", timeout);
        Assert.True(drain.Code == 0, drain.Err + drain.Out);
        Assert.Contains("B cordoned; 3 guests to move, at most 2 at a time", drain.Out);

        // The CLI that started the drain has exited; the cordon holds: B refuses an incoming migration and a new guest.
        var refused = await NodeProcesses.CliAsync($"migrate {seed} --vm probe --to B", timeout);
        Assert.True(refused.Code == 5, refused.Err + refused.Out);
        Assert.Contains("cordoned", refused.Err);
        var noCreate = await NodeProcesses.CliAsync($"vm create {seed} --id late --on B --ram 64MiB", timeout);
        Assert.True(noCreate.Code == 5, noCreate.Err + noCreate.Out);
        Assert.Contains("cordoned", noCreate.Err);

        // A second CLI call watches the drain through `status` until it is done.
        var status = await DrainTestCluster.WaitForDrainAsync(seed, "done", TimeSpan.FromSeconds(180));
        Assert.Contains("cordoned: B", status);
        stopSampling.Cancel();
        var maxAtOnce = await sampler;

        var list = await DrainTestCluster.DrainsAsync(client);
        var record = Assert.Single(list.Drains);
        Assert.Equal(DrainStatus.Done, record.State);
        Assert.Equal(3, record.Guests.Count);
        Assert.All(record.Guests, g =>
        {
            Assert.Equal(DrainGuest.Done, g.State);
            Assert.NotEqual(b.Address, g.Target);
            var attempt = Assert.Single(g.Attempts);
            Assert.NotNull(attempt.EndedUtc);
        });
        var intervals = record.Guests.Select(g => (g.Attempts[0].StartedUtc, g.Attempts[0].EndedUtc!.Value)).ToArray();
        Assert.Equal(2, MaxOverlap(intervals));
        // From the node's own list: never more than two; and two at once was seen, so this sampling does see overlaps.
        Assert.Equal(2, maxAtOnce);

        // The source node reports three completed and verified migrations, and B runs nothing now.
        var fromB = (await client.AskAsync<MigrationList>(b.Address, GetMigrations.Instance, TimeSpan.FromSeconds(60))).Migrations;
        Assert.Equal(3, fromB.Count);
        Assert.All(fromB, m => Assert.True(m.Report is { Status: "completed", Verified: true }, m.Report?.Error ?? m.State));
        var guests = await NodeProcesses.CliAsync($"vm list {seed}", timeout);
        foreach (var vm in new[] { "g1", "g2", "g3" })
        {
            var row = guests.Out.Split('\n').Single(l => l.Contains($"│ {vm} ", StringComparison.Ordinal));
            Assert.Matches(@"│\s*(A|C)\s*│\s*running", row);
        }

        // uncordon lifts it: the same migration that was refused now completes.
        // Exit 4 (a node did not answer the CLI in time: nothing was done) is retried; uncordon is idempotent.
        var uncordon = await NodeProcesses.CliAsync($"uncordon {seed} --node B", timeout);
        for (var attempt = 1; uncordon.Code == 4 && attempt < 5; attempt++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            uncordon = await NodeProcesses.CliAsync($"uncordon {seed} --node B", timeout);
        }

        Assert.True(uncordon.Code == 0, uncordon.Err + uncordon.Out);
        var after = await MigrateWhenAcceptedAsync(seed, "probe", "B", timeout);
        Assert.True(after.Code == 0, after.Err + after.Out);
        var again = await DrainTestCluster.DrainsAsync(client);
        Assert.Empty(again.Cordoned);
    }

    /// <summary>Largest number of [start, end) intervals that hold at one instant.</summary>
    private static int MaxOverlap(IEnumerable<(DateTime Start, DateTime End)> intervals) =>
        intervals.SelectMany(i => new[] { (i.Start, 1), (i.End, -1) })
            .OrderBy(e => e.Item1).ThenBy(e => e.Item2) // an end before a start at the same instant
            .Aggregate((Now: 0, Max: 0), (acc, e) => (acc.Now + e.Item2, Math.Max(acc.Max, acc.Now + e.Item2))).Max;

    private static async Task<int> SampleConcurrencyAsync(ClusterClient client, string node, CancellationToken stop)
    {
        var max = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var list = await client.AskAsync<MigrationList>(node, GetMigrations.Instance, TimeSpan.FromSeconds(5));
                max = Math.Max(max, list.Migrations.Count(m => m.Report is null));
            }
            catch (CliException)
            {
                // a slow answer under load: sample again
            }

            try
            {
                await Task.Delay(100, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return max;
    }

    /// <summary>
    /// Retries a migration refused as cordoned for a few seconds: the uncordon reaches every node's view of the set
    /// through replication right after the answer.
    /// </summary>
    private static async Task<(int Code, string Out, string Err)> MigrateWhenAcceptedAsync(string seed, string vm, string to, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = await NodeProcesses.CliAsync($"migrate {seed} --vm {vm} --to {to}", timeout);
            if (r.Code != 5 || !r.Err.Contains("cordoned", StringComparison.Ordinal) || sw.Elapsed > TimeSpan.FromSeconds(15))
            {
                return r;
            }

            await Task.Delay(500);
        }
    }
}

/// <summary>
/// The node that runs the drain coordinator (the oldest, A) is killed while a drained guest migrates to it: a new
/// coordinator on another node reads the replicated drain, learns that migration failed, retries the guest on C, and
/// the drain ends done with the cordon of B still in force.
/// </summary>
[Collection(DrainTestCluster.Collection)]
public sealed class DrainFailoverTests
{
    [Fact]
    public async Task A_drain_goes_on_when_the_coordinator_node_dies_and_the_guest_it_was_receiving_is_retried_elsewhere()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        var a = await nodes.StartNodeAsync("A", pa, null);
        await nodes.StartNodeAsync("B", pb, pa);
        await nodes.StartNodeAsync("C", pc, pa);
        var seed = $"--seed 127.0.0.1:{pb} --seed 127.0.0.1:{pc}";
        var timeout = TimeSpan.FromSeconds(120);
        await using var client = ClusterClient.Connect([$"127.0.0.1:{pb}", $"127.0.0.1:{pc}"]);
        var all = await DrainTestCluster.WaitForNodesAsync(client, 3);
        var addressA = all.Single(n => n.Name == "A").Address;
        var addressC = all.Single(n => n.Name == "C").Address;

        foreach (var vm in new[] { "f1", "f2" })
        {
            var created = await NodeProcesses.CliAsync($"vm create {seed} --id {vm} --on B --ram 64MiB --dirty-rate 16MiB", timeout);
            Assert.True(created.Code == 0, created.Err + created.Out);
        }

        // RAM-only guests that never converge (a downtime limit of 1 us) until the 200th iteration (each lasts at least
        // min-iteration-time, 50 ms): each migration lasts over 10 s. (No device: a guest whose migration failed in stop-copy cannot migrate again, its device stays in
        // STOP_COPY; see the report of this branch.)
        var drain = await NodeProcesses.CliAsync(
            $"drain {seed} --node B --max-parallel 2 --downtime-limit 0.001 --max-iterations 200", timeout);
        Assert.True(drain.Code == 0, drain.Err + drain.Out);

        // Both guests start at once, one to A and one to C (the freest node, then the freest after reserving).
        var sw = Stopwatch.StartNew();
        string? toA = null;
        while (toA is null)
        {
            var d = (await DrainTestCluster.DrainsAsync(client)).Drains.Single();
            toA = d.Guests.FirstOrDefault(g => g.State == DrainGuest.Migrating && g.Target == addressA)?.VmId;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "no guest was migrating to A: " + string.Join(", ", d.Guests.Select(g => $"{g.VmId} {g.State} {g.Target}")));
            await Task.Delay(100);
        }

        a.Kill(entireProcessTree: true);

        var status = await DrainTestCluster.WaitForDrainAsync(seed, "done", TimeSpan.FromSeconds(180));
        Assert.Contains("cordoned: B", status);
        var record = (await DrainTestCluster.DrainsAsync(client)).Drains.Single();
        var retried = record.Guests.Single(g => g.VmId == toA);
        var attempts = string.Join("; ", retried.Attempts.Select(x => $"{x.Target} {x.StartedUtc:HH:mm:ss.fff}-{x.EndedUtc:HH:mm:ss.fff} {x.Outcome}"));
        Assert.True(retried.Attempts.Select(x => x.Target).SequenceEqual([addressA, addressC]), $"A={addressA} C={addressC}: {attempts}");
        Assert.StartsWith("failed", retried.Attempts[0].Outcome);
        Assert.Equal("completed", retried.Attempts[1].Outcome);
        Assert.All(record.Guests, g => Assert.Equal(DrainGuest.Done, g.State));
        var guests = await NodeProcesses.CliAsync($"vm list {seed}", timeout);
        foreach (var vm in new[] { "f1", "f2" })
        {
            Assert.Matches(@"│\s*C\s*│\s*running", guests.Out.Split('\n').Single(l => l.Contains($"│ {vm} ", StringComparison.Ordinal)));
        }
    }
}

/// <summary>Waits shared by the drain tests.</summary>
internal static class DrainTestCluster
{
    /// <summary>The drain tests run one after the other: each runs three node processes on a 2-core machine.</summary>
    public const string Collection = "drain node processes";

    /// <summary>The drain coordinator's record, asked again while the loaded machine makes a node slow to answer.</summary>
    public static async Task<DrainList> DrainsAsync(ClusterClient client)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await DrainCommands.AskAsync<DrainList>(client, GetDrains.Instance);
            }
            catch (CliException e) when (e.ExitCode == ExitCodes.Unreachable && sw.Elapsed < TimeSpan.FromSeconds(90))
            {
                await Task.Delay(500);
            }
        }
    }

    public static async Task<IReadOnlyList<NodeInfo>> WaitForNodesAsync(ClusterClient client, int count)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var nodes = await client.NodesAsync();
                if (nodes.Count(n => n.Status == "Up" && n.Reachable) >= count)
                {
                    return nodes;
                }
            }
            catch (CliException) when (sw.Elapsed < TimeSpan.FromSeconds(60))
            {
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"cluster of {count} not up");
            }

            await Task.Delay(300);
        }
    }

    /// <summary>Polls `status` (a CLI process each time) until the drain of B is in <paramref name="state"/>.</summary>
    public static async Task<string> WaitForDrainAsync(string seed, string state, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        var last = "";
        while (sw.Elapsed < timeout)
        {
            var r = await NodeProcesses.CliAsync($"status {seed}", TimeSpan.FromSeconds(60));
            last = r.Out + r.Err;
            if (r.Code == 0 && last.Contains($" of B: {state},", StringComparison.Ordinal))
            {
                return last;
            }

            await Task.Delay(500);
        }

        throw new TimeoutException($"the drain never reached {state}: {last}");
    }
}
