using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// The operator's live commands get the reply of the source coordinator's state: applied before the switchover began
/// (here in setup, which no other spec reaches), refused as too late once the guest has stopped (here in verifying).
/// The destination's injected holds keep the source in that phase for seconds, so the commands land there however
/// loaded the machine is.
/// </summary>
[Collection("two-node cluster")]
public sealed class PhaseCommandSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private const long MiB = 1 << 20;
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Set_and_force_switchover_in_setup_are_applied_and_the_migration_then_completes()
    {
        var spec = new GuestSpec("phase-setup", 32 * MiB, [], 0);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        // The destination holds its PrepareAck for 15 s: the source stays in setup meanwhile.
        var settings = TwoNodeCluster.Settings() with { Inject = [new FaultInjection(FaultInjection.Hold, "setup", 0, null, 15_000)] };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);

        var changed = Assert.IsType<MigrationParametersChanged>(await cluster.Source.Node.Ask<object>(new SetMigrationParameters(id, 60_000, null, null), Ask));
        Assert.Equal("setup", changed.Phase);
        Assert.Equal(60_000, changed.DowntimeLimitMs);
        var accepted = Assert.IsType<SwitchoverAccepted>(await cluster.Source.Node.Ask<object>(new ForceSwitchover(id), Ask));
        Assert.Equal("setup", accepted.Phase);

        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
    }

    [Fact]
    public async Task Set_and_force_switchover_in_verifying_are_refused_as_too_late_after_validation()
    {
        var spec = new GuestSpec("phase-verifying", 32 * MiB, [], 0);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        // The destination holds its DestinationVerified for 15 s: the source stays in verifying meanwhile.
        var settings = TwoNodeCluster.Settings() with { Inject = [new FaultInjection(FaultInjection.Hold, "verify", 0, null, 15_000)] };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "verifying", TimeSpan.FromSeconds(60));

        var force = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new ForceSwitchover(id), Ask));
        Assert.Equal("too-late", force.Code);
        Assert.Contains("in phase verifying", force.Reason);
        var set = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new SetMigrationParameters(id, 500, null, null), Ask));
        Assert.Equal("too-late", set.Code);
        Assert.Contains("in phase verifying", set.Reason);
        // A value that is wrong is reported as such in any phase: validation comes before the phase.
        var bad = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new SetMigrationParameters(id, -5, null, null), Ask));
        Assert.Equal("bad-settings", bad.Code);

        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
    }
}
