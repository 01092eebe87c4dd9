using Akka.Actor;
using Akka.DistributedData;
using Migration.Actors.Drain;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// The source's coordinator dies after it released the guest (GuestHandedOver), before the destination's resume was
/// confirmed (docs/architecture.md, "Ownership rules"): the node keeps the stopped copy (HandoverCustody) and frees it
/// only once the record names the destination and the destination lists the guest; if the destination is gone without
/// resuming it (its incoming migration stopped, or its node removed), the source takes the guest back through the
/// record and resumes it, once. The source holds the commit (hold:commit) so that the coordinator dies in committing,
/// and the destination holds its claim (hold:resume) so that the fault lands before it resumes.
/// </summary>
[Collection("two-node cluster")]
public sealed class HandoverCustodySpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private async Task<GuestSpec> CreateAsync(string id)
    {
        var spec = new GuestSpec(id, 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 0, Seed: 5)], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        return spec;
    }

    /// <summary>Holds the commit on the source and the claim on the destination for <paramref name="resumeHoldMs"/>.</summary>
    private static MigrationSettings Held(double resumeHoldMs)
    {
        FaultInjection.TryParse("hold:commit=60000", out var commit, out _);
        FaultInjection.TryParse($"hold:resume={resumeHoldMs}", out var resume, out _);
        return TwoNodeCluster.Settings() with { Inject = [commit, resume], MaxIterations = 1, CommitTimeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>A majority read of the guest's entry, asked again while no majority answers (a member rejoining, a loaded host).</summary>
    internal static async Task<GuestEpoch> ReadAsync(NodeHost on, string vm)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var reply = await DistributedData.Get(on.System).Replicator.Ask<IGetResponse>(
                Dsl.Get(OwnershipRecord.Key, new ReadMajority(TimeSpan.FromSeconds(5))), Patience);
            switch (reply)
            {
                case GetSuccess g:
                    return OwnershipRecord.Of(g.Get(OwnershipRecord.Key), vm);
                case NotFound:
                    return GuestEpoch.None;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no majority read of the ownership record on {on.Address}: {reply}");
            await Task.Delay(500);
        }
    }

    /// <summary>Polls <paramref name="on"/>'s guest list until the guest shows <paramref name="state"/> (bounded).</summary>
    internal static async Task WaitForStateAsync(NodeHost on, string vm, string state)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!(await TwoNodeCluster.ListAsync(on)).Guests.Any(g => g.VmId == vm && g.State == state))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{vm} never showed {state} on {on.Address}");
            await Task.Delay(100);
        }
    }

    private static Task KillCoordinatorAsync(NodeHost source, Guid id)
    {
        source.System.ActorSelection($"/user/node/migration-{id:N}").Tell(Kill.Instance);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_coordinator_that_dies_after_the_hand_over_frees_the_stopped_copy_only_once_the_destination_runs_the_guest()
    {
        var spec = await CreateAsync("custody-alive");
        // The destination resumes 4 s after it learnt that the coordinator died (HandedOver from the source node).
        var (id, watcher) = await cluster.StartAsync(spec.Id, Held(4000));
        await watcher.WaitForAsync(p => p.Phase == "committing", Patience);

        await KillCoordinatorAsync(cluster.Source, id);
        var report = await watcher.Finished.WaitAsync(Patience);

        // The report came only after the destination ran the guest (before the fix it came at once, the copy freed).
        var onDestination = Assert.Single((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
        Assert.Equal("running", onDestination.State);
        Assert.Equal("handed-over", report.Status);
        Assert.Contains("coordinator ended without a result", report.Error);
        Assert.Contains("the destination runs the guest", report.Error);
        Assert.Equal(cluster.Destination.Address, (await ReadAsync(cluster.Source, spec.Id)).Owner);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.DoesNotContain(cluster.Source.Guests.Snapshot(), g => g.Guest.Id == spec.Id); // the stopped copy was freed
    }

    [Fact]
    public async Task A_coordinator_that_dies_after_the_hand_over_resumes_the_guest_once_when_the_destination_migration_stops_before_its_resume()
    {
        var spec = await CreateAsync("custody-gone");
        var start = await ReadAsync(cluster.Source, spec.Id);
        var sinceStart = System.Diagnostics.Stopwatch.StartNew();
        var (id, watcher) = await cluster.StartAsync(spec.Id, Held(600_000));
        await watcher.WaitForAsync(p => p.Phase == "committing", Patience);

        await KillCoordinatorAsync(cluster.Source, id);
        // The destination learnt of the death and asked the source node (in doubt), which answered HandedOver: it holds its claim.
        await WaitForStateAsync(cluster.Destination, spec.Id, "in-doubt");
        Assert.Contains(cluster.Source.Guests.Snapshot(), g => g.Guest.Id == spec.Id && g.State == GuestHandoverState.Released); // kept, stopped
        // The copy in custody holds its memory, and its id: a new guest under it would be overwritten by a take-back.
        var capacity = await cluster.Source.Node.Ask<NodeCapacity>(GetCapacity.Instance, TimeSpan.FromSeconds(10));
        Assert.True(capacity.UsedBytes >= spec.RamBytes, $"used {capacity.UsedBytes} B while a {spec.RamBytes} B copy is held");
        var duplicate = await cluster.Source.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(10));
        var refused = Assert.IsType<CommandFailed>(duplicate);
        Assert.Equal("exists", refused.Code);
        Assert.Contains("still held", refused.Reason);
        var late = new ReportWatcher(cluster.Source.System); // `status --watch` while the copy is in custody hears the end too
        cluster.Source.Node.Tell(new SubscribeMigration(id, late.Actor));
        var incoming = await cluster.Destination.System.ActorSelection($"/user/node/incoming-{id:N}").Ask<ActorIdentity>(new Identify(0), TimeSpan.FromSeconds(10));
        Assert.NotNull(incoming.Subject);
        incoming.Subject.Tell(Kill.Instance);

        var report = await watcher.Finished.WaitAsync(Patience);

        Assert.Equal("failed", report.Status);
        Assert.Contains("taken back", report.Error);
        // The downtime is how long the guest was paused on the source (stop-copy, verify, commit, custody), not 0.
        Assert.InRange(report.DowntimeMs, 1, sinceStart.Elapsed.TotalMilliseconds);
        Assert.Equal("failed", (await late.Finished.WaitAsync(Patience)).Status);
        var now = await ReadAsync(cluster.Source, spec.Id);
        Assert.Equal(cluster.Source.Address, now.Owner);
        Assert.True(now.Epoch >= start.Epoch + 2, $"started at {start}, now {now}");
        var onSource = Assert.Single((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.Equal("running", onSource.State);
        Assert.Null(onSource.MigrationId);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
        var status = await cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(HandoverDecision.KeptBySource, status.Decision);

        // Resumed once, devices back to running: the guest migrates again, and ends on the destination only.
        var (_, again) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings());
        var second = await again.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.True(second.Status == "completed" && second.Verified, $"{second.Status}: {second.Error}");
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.Single((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
    }
}

/// <summary>
/// As <see cref="HandoverCustodySpecs"/>, with the destination's node removed from the cluster (downed) while its claim is
/// held: the source's custody sees the removal and takes the guest back. A cluster of its own (the destination is downed
/// and rejoins as a new incarnation without the copy, which went with its old ActorSystem).
/// </summary>
public sealed class HandoverCustodyRemovalSpecs
{
    private static readonly Akka.Configuration.Config TestConfig = Akka.Configuration.ConfigurationFactory.ParseString("""
        akka.actor.serialize-messages = on
        akka.loglevel = WARNING
        migration.prefault-destination = off
        # A loaded machine's pause must not look like a hang: only the spec downs the destination.
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 10s
        """);

    [Fact]
    public async Task A_coordinator_that_dies_after_the_hand_over_resumes_the_guest_once_when_the_destination_node_is_removed_before_its_resume()
    {
        var a = NodeHost.Start("127.0.0.1", 0, [], TestConfig);
        await a.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        var b = NodeHost.Start("127.0.0.1", 0, [a.Address], TestConfig);
        try
        {
            await b.WaitUpAsync(2, TimeSpan.FromSeconds(30));
            await a.WaitUpAsync(2, TimeSpan.FromSeconds(30));
            var spec = new GuestSpec("custody-removed", 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 0, Seed: 5)], 8L << 20);
            Assert.IsType<GuestCreated>(await a.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(30)));
            var start = await HandoverCustodySpecs.ReadAsync(a, spec.Id);
            FaultInjection.TryParse("hold:commit=60000", out var commit, out _);
            FaultInjection.TryParse("hold:resume=600000", out var resume, out _);
            var settings = TwoNodeCluster.Settings() with { Inject = [commit, resume], MaxIterations = 1, CommitTimeout = TimeSpan.FromSeconds(60) };
            var watcher = new ReportWatcher(a.System);
            var started = Assert.IsType<MigrationStarted>(await a.Node.Ask<object>(new StartMigration(spec.Id, b.Address, settings, watcher.Actor), TimeSpan.FromSeconds(10)));
            await watcher.WaitForAsync(p => p.Phase == "committing", TimeSpan.FromSeconds(60));

            a.System.ActorSelection($"/user/node/migration-{started.MigrationId:N}").Tell(Kill.Instance);
            await HandoverCustodySpecs.WaitForStateAsync(b, spec.Id, "in-doubt"); // b asked, heard HandedOver, holds its claim
            Akka.Cluster.Cluster.Get(a.System).Down(Akka.Cluster.Cluster.Get(b.System).SelfAddress);
            var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal("failed", report.Status);
            Assert.Contains("taken back", report.Error);
            var onA = Assert.Single((await TwoNodeCluster.ListAsync(a)).Guests, g => g.VmId == spec.Id);
            Assert.Equal("running", onA.State);
            var now = await HandoverCustodySpecs.ReadAsync(a, spec.Id);
            Assert.Equal(a.Address, now.Owner);
            Assert.True(now.Epoch >= start.Epoch + 2, $"started at {start}, now {now}");
        }
        finally
        {
            await b.DisposeAsync();
            await a.DisposeAsync();
        }
    }
}
