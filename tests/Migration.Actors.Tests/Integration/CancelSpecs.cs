using Akka.Actor;
using Migration.Actors.Messages;
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
    [InlineData("switchover-ack")]
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
            // stop-copy and switchover-ack: switch over after one iteration; the slow device then holds the phase
            // (switchover-ack waits for the in-flight chunks to load, ~300 ms; stop-copy loads the whole state).
            MaxIterations = phase is "stop-copy" or "switchover-ack" ? 1 : 10_000,
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

        var source = await TwoNodeCluster.ListAsync(cluster.Source);
        var entry = Assert.Single(source.Guests, g => g.VmId == spec.Id);
        Assert.Equal("running", entry.State);

        // The guest's vCPU runs again on the source (it was stopped in stop-copy): its RAM keeps changing.
        var first = Assert.IsType<GuestDigests>(await cluster.Source.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
        Assert.True(first.WorkloadPatternOk, first.PatternMessage);
        var changed = false;
        for (var i = 0; i < 50 && !changed; i++)
        {
            await Task.Delay(100);
            var next = Assert.IsType<GuestDigests>(await cluster.Source.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
            changed = !next.Ram.SequenceEqual(first.Ram);
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

        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
        var left = await cluster.Destination.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(2), TimeSpan.FromSeconds(5));
        Assert.Null(left.Subject);
    }
}
