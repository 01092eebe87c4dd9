using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Guest;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Convergence between two cluster nodes over real channels: auto-converge throttles a guest that dirties faster than
/// the channels move it until it converges; the bandwidth limit holds; the operator's live changes and forced
/// switchover reach the coordinator and are reported. Figures that depend on the machine's load are written to the
/// test output rather than asserted, except where the bound is far from what the machine does.
/// </summary>
[Collection("two-node cluster")]
public sealed class ConvergenceSpecs(TwoNodeCluster cluster, ITestOutputHelper output) : IClassFixture<TwoNodeCluster>
{
    private const long MiB = 1 << 20;

    [Fact]
    public async Task Auto_converge_throttles_a_1GiB_guest_dirtying_4GiB_per_second_until_it_converges_without_a_forced_switchover()
    {
        var spec = new GuestSpec("auto-converge", 1024 * MiB, [], 4096 * MiB);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with
        {
            // The default limit (issue 12's case): since the digests hash only what the last iteration changed, nothing
            // but the dirty set is left for the throttle to shrink (a 1000 ms limit converged unthrottled at iteration 3).
            DowntimeLimit = TimeSpan.FromMilliseconds(300),
            // Room for the throttle to climb 20, 30, ... 99 (a step every second iteration that does not converge).
            MaxIterations = 200,
            AutoConverge = new() { Enabled = true },
            ProgressInterval = TimeSpan.FromMilliseconds(50),
        };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromMinutes(4));
        output.WriteLine($"downtime {report.DowntimeMs:0} ms (limit {report.DowntimeLimitMs:0}, expected {report.ExpectedDowntimeTerms}); " +
                         $"iterations {report.Iterations}; throttle max {report.MaxThrottlePercent} %; reason {report.SwitchoverReason}");

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.False(report.ForcedSwitchover);
        Assert.Equal(SwitchoverReason.Converged, report.SwitchoverReason);
        Assert.True(report.MaxThrottlePercent > 0);
        Assert.Contains(watcher.Progress, p => p.ThrottlePercent > 0);
        // The throttle is lifted with the resume: the guest runs unthrottled on the destination.
        var guest = Assert.Single((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
        Assert.Equal(0, guest.ThrottlePercent);
        var digests = Assert.IsType<GuestDigests>(await cluster.Destination.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(60)));
        Assert.True(digests.WorkloadPatternOk, digests.PatternMessage);
    }

    [Fact]
    public async Task A_cancelled_migration_resets_the_auto_converge_throttle_of_the_guest_that_stays_on_the_source()
    {
        var spec = new GuestSpec("auto-converge-cancel", 64 * MiB, [], 4096 * MiB);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with
        {
            DowntimeLimit = TimeSpan.FromMilliseconds(0.001), // never fits: the throttle keeps climbing
            MaxIterations = 10_000,
            AutoConverge = new() { Enabled = true },
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.ThrottlePercent >= 30, TimeSpan.FromSeconds(60));
        var during = Assert.Single((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.True(during.ThrottlePercent >= 30);

        Assert.IsType<CancelAccepted>(await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("cancelled", report.Status);
        Assert.True(report.MaxThrottlePercent >= 30);
        Assert.Null(report.SwitchoverReason);
        var after = Assert.Single((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.Equal(0, after.ThrottlePercent);
        Assert.Equal("running", after.State);
    }

    [Fact]
    public async Task A_bandwidth_limit_of_40MiB_per_second_keeps_the_precopy_rate_at_most_15_percent_above_it()
    {
        // 128 MiB of non-zero RAM, no dirtying: the precopy phase moves it all at the limit (about 3 s). The limit holding
        // is the behaviour asserted; how close to it a loaded machine gets is a figure, written to the output (at load
        // 25-50 on 2 cores it made 14-31 MiB/s, 34-46 when quieter).
        var spec = new GuestSpec("bandwidth", 128 * MiB, [], 0, Devices.Workload.RamFillPattern.Random, Seed: 3);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { MaxBandwidth = 40 * MiB };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromMinutes(2));
        output.WriteLine($"precopy {report.PrecopyThroughputMiBps:0.0} MiB/s, overall {report.ThroughputMiBps:0.0} MiB/s, wire {report.WireBytes} bytes");

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(40 * MiB, report.MaxBandwidth);
        Assert.InRange(report.PrecopyThroughputMiBps, double.Epsilon, 46);
    }

    [Fact]
    public async Task An_operator_switchover_stops_the_guest_at_the_next_iteration_boundary_and_is_reported_as_forced_by_operator()
    {
        var spec = new GuestSpec("forced", 64 * MiB, [], 64 * MiB);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy" && p.Iteration >= 3, TimeSpan.FromSeconds(60));

        var reply = await cluster.Source.Node.Ask<object>(new ForceSwitchover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(id, Assert.IsType<SwitchoverAccepted>(reply).MigrationId);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(SwitchoverReason.ForcedByOperator, report.SwitchoverReason);
        Assert.True(report.ForcedSwitchover);
        Assert.True(report.Iterations < 10_000);

        // Now it has ended: both commands answer clearly.
        var late = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new ForceSwitchover(id), TimeSpan.FromSeconds(10)));
        Assert.Equal("ended", late.Code);
        var lateSet = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new SetMigrationParameters(id, 500, null, null), TimeSpan.FromSeconds(10)));
        Assert.Equal("ended", lateSet.Code);
    }

    [Fact]
    public async Task Set_changes_the_limits_of_a_running_migration_which_then_converges()
    {
        // Held at 16 MiB/s with a limit it cannot meet; then unlimited with a limit it meets at once.
        var spec = new GuestSpec("set-live", 128 * MiB, [], 1 * MiB, Devices.Workload.RamFillPattern.Random, Seed: 4);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000, MaxBandwidth = 16 * MiB };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy" && p.BytesSent > 0, TimeSpan.FromSeconds(60));

        var bad = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new SetMigrationParameters(id, -5, null, null), TimeSpan.FromSeconds(10)));
        Assert.Equal("bad-settings", bad.Code);
        Assert.Contains("-5", bad.Reason);

        var reply = await cluster.Source.Node.Ask<object>(new SetMigrationParameters(id, 60_000, 0, true), TimeSpan.FromSeconds(10));
        var changed = Assert.IsType<MigrationParametersChanged>(reply);
        Assert.Equal(60_000, changed.DowntimeLimitMs);
        Assert.Equal(0, changed.MaxBandwidth);
        Assert.True(changed.AutoConverge);

        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(SwitchoverReason.Converged, report.SwitchoverReason);
        Assert.False(report.ForcedSwitchover);
        Assert.Equal(0, report.MaxBandwidth);
    }

    [Fact]
    public async Task Live_changes_to_an_unknown_migration_fail_with_unknown_migration()
    {
        var set = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new SetMigrationParameters(Guid.NewGuid(), 100, null, null), TimeSpan.FromSeconds(10)));
        Assert.Equal("unknown-migration", set.Code);
        var force = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new ForceSwitchover(Guid.NewGuid()), TimeSpan.FromSeconds(10)));
        Assert.Equal("unknown-migration", force.Code);
    }
}
