using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Cancel before commit, in each phase that lasts long enough to be hit: the guest runs on the source (its workload
/// resumed if it had been stopped), and the destination releases everything.
/// </summary>
[Collection("two-node cluster")]
public sealed class CancelSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    [Theory]
    [InlineData("setup")]
    [InlineData("precopy")]
    [InlineData("stop-copy")]
    public async Task Cancel_in_a_phase_before_commit_leaves_the_guest_running_on_the_source(string phase)
    {
        // A destination device that loads at 300 ms per MiB holds precopy (precopy data) or stop-copy (precopy=0).
        var device = new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, phase == "stop-copy" ? 0 : 8 << 20, Seed: 9);
        var spec = new GuestSpec($"cancel-{phase}", 32L << 20, [device], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        FaultInjection.TryParse("slow-load:gpu0=300", out var slow, out _);
        var settings = TwoNodeCluster.Settings() with
        {
            Inject = [slow],
            DeviceBufferBudget = 1 << 20,
            // stop-copy: switch over after one iteration; the slow device then holds the phase (it loads the whole state).
            MaxIterations = phase == "stop-copy" ? 1 : 10_000,
            DowntimeLimit = phase == "precopy" ? TimeSpan.FromMilliseconds(0.001) : TimeSpan.FromMilliseconds(300),
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        if (phase != "setup")
        {
            await watcher.WaitForAsync(p => p.Phase == phase, TimeSpan.FromSeconds(30));
        }

        var reply = await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10));
        Assert.IsType<CancelAccepted>(reply);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("cancelled", report.Status);

        await AssertGuestRunsOnSourceAndDestinationReleasedAsync(spec.Id);
    }

    [Fact]
    public async Task Cancel_in_switchover_ack_while_the_destination_still_loads_precopy_chunks_leaves_the_guest_running_on_the_source()
    {
        // All device state is precopy data; the destination loads it at 4 s per MiB and at most 1 MiB (4 chunks) is
        // in flight. After one RAM iteration the source switches over and waits for the in-flight chunks to be
        // credited back before it stops the guest: a switchover-ack window of up to ~4 s.
        var device = new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 8 << 20, Seed: 9);
        var spec = new GuestSpec("cancel-switchover-ack", 32L << 20, [device], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        FaultInjection.TryParse("slow-load:gpu0=4000", out var slow, out _);
        var settings = TwoNodeCluster.Settings() with
        {
            Inject = [slow],
            DeviceBufferBudget = 1 << 20,
            MaxIterations = 1,
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        var seen = await watcher.WaitForAsync(p => p.Phase == "switchover-ack", TimeSpan.FromSeconds(30));
        Assert.Equal(1, seen.Iteration);
        await AssertDestinationHoldsAnIncomingMigrationAsync();

        Assert.IsType<CancelAccepted>(await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("cancelled", report.Status);
        // The cancel landed in switchover-ack, not later: stopping the guest starts the final RAM pass, which counts
        // as one more iteration, so a single iteration means the guest was never stopped.
        Assert.Equal(1, report.Iterations);
        Assert.Equal("switchover-ack", LastPhaseBefore(watcher, "cancelled"));
        await AssertGuestRunsOnSourceAndDestinationReleasedAsync(spec.Id);
    }

    [Fact]
    public async Task Cancel_in_verifying_while_the_destination_still_loads_stop_copy_data_resumes_the_stopped_guest_on_the_source()
    {
        // All device state is stop-copy data (no precopy) and the destination loads it at 1 s per MiB. The budget
        // (16 MiB) holds the whole device, so the source sends everything, hashes RAM, sends SourceDigests and waits
        // in verifying while the destination is still loading: a verifying window of several seconds.
        var device = new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 0, Seed: 9, LoadDelayMsPerMiB: 1000);
        var spec = new GuestSpec("cancel-verifying", 32L << 20, [device], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with
        {
            DeviceBufferBudget = 16 << 20,
            MaxIterations = 1,
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "verifying", TimeSpan.FromSeconds(30));
        await AssertDestinationHoldsAnIncomingMigrationAsync();

        // The guest was stopped at switchover: its RAM does not change while the migration verifies.
        var stopped = await DigestsAsync(cluster.Source, spec.Id);
        await Task.Delay(300);
        Assert.Equal(stopped.Ram, (await DigestsAsync(cluster.Source, spec.Id)).Ram);

        // Cancel is accepted only before commit, and verifying is the last phase before commit: the cancel lands in it.
        Assert.IsType<CancelAccepted>(await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("cancelled", report.Status);
        Assert.Equal("verifying", LastPhaseBefore(watcher, "cancelled"));
        // ... and resumed on cancel: the workload dirties RAM again.
        await AssertGuestRunsOnSourceAndDestinationReleasedAsync(spec.Id);
    }

    [Fact]
    public async Task A_coordinator_that_dies_of_an_internal_error_after_the_stop_leaves_the_guest_running_on_the_source()
    {
        // The verifying window of the test above; instead of a cancel, the coordinator is killed (as a bug would).
        var device = new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 0, Seed: 9, LoadDelayMsPerMiB: 1000);
        var spec = new GuestSpec("crash-coordinator", 32L << 20, [device], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { DeviceBufferBudget = 16 << 20, MaxIterations = 1 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "verifying", TimeSpan.FromSeconds(30));
        await AssertDestinationHoldsAnIncomingMigrationAsync();

        cluster.Source.System.ActorSelection($"/user/node/migration-{id:N}").Tell(Kill.Instance);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("failed", report.Status);
        Assert.Contains("coordinator ended without a result", report.Error);
        Assert.Contains("ActorKilledException", report.Error);
        // The stopped guest runs again on the source; the destination discarded its copy.
        await AssertGuestRunsOnSourceAndDestinationReleasedAsync(spec.Id);
        var status = await cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(HandoverDecision.KeptBySource, status.Decision);
    }

    [Fact]
    public async Task A_destination_migration_that_dies_of_an_internal_error_fails_the_migration_cleanly()
    {
        var device = new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 8 << 20, Seed: 9, LoadDelayMsPerMiB: 300);
        var spec = new GuestSpec("crash-incoming", 32L << 20, [device], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000 };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy", TimeSpan.FromSeconds(30));
        await AssertDestinationHoldsAnIncomingMigrationAsync();

        cluster.Destination.System.ActorSelection("/user/node/incoming-*").Tell(Kill.Instance);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("failed", report.Status);
        // The destination node's IncomingFailed says why; on a loaded machine the source's watch of the incoming actor
        // may end the migration first (after its 1 s grace), with the bare loss. Either is a truthful reason.
        Assert.True(report.Error!.Contains("ended without a result", StringComparison.Ordinal) ||
                    report.Error.Contains("migration actor", StringComparison.Ordinal), report.Error);
        await AssertGuestRunsOnSourceAndDestinationReleasedAsync(spec.Id);
    }

    /// <summary>The phase of the last progress report before the first one in <paramref name="final"/>.</summary>
    private static string? LastPhaseBefore(ReportWatcher watcher, string final) =>
        watcher.Progress.TakeWhile(p => p.Phase != final).LastOrDefault()?.Phase;

    private async Task AssertDestinationHoldsAnIncomingMigrationAsync()
    {
        var incoming = await cluster.Destination.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(0), TimeSpan.FromSeconds(5));
        Assert.NotNull(incoming.Subject);
    }

    private static async Task<GuestDigests> DigestsAsync(NodeHost node, string vmId) =>
        Assert.IsType<GuestDigests>(await node.Node.Ask<object>(new GetGuestDigests(vmId), TimeSpan.FromSeconds(10)));

    /// <summary>
    /// The guest is registered as running on the source with no migration, its workload runs (RAM keeps changing),
    /// and the destination discarded everything: no guest, no incoming migration actor.
    /// </summary>
    private async Task AssertGuestRunsOnSourceAndDestinationReleasedAsync(string vmId)
    {
        var source = await TwoNodeCluster.ListAsync(cluster.Source);
        var entry = Assert.Single(source.Guests, g => g.VmId == vmId);
        Assert.Equal("running", entry.State);
        Assert.Null(entry.MigrationId);

        // The guest's vCPU runs on the source (again, if it was stopped): its RAM keeps changing.
        var first = await DigestsAsync(cluster.Source, vmId);
        Assert.True(first.WorkloadPatternOk, first.PatternMessage);
        var changed = false;
        for (var i = 0; i < 50 && !changed; i++)
        {
            await Task.Delay(100);
            changed = !(await DigestsAsync(cluster.Source, vmId)).Ram.SequenceEqual(first.Ram);
        }

        Assert.True(changed, "the source guest's workload did not resume");

        // The destination discarded everything.
        for (var i = 0; i < 50; i++)
        {
            var incoming = await cluster.Destination.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(1), TimeSpan.FromSeconds(5));
            if (incoming.Subject is null)
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == vmId);
        var left = await cluster.Destination.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(2), TimeSpan.FromSeconds(5));
        Assert.Null(left.Subject);
    }
}
