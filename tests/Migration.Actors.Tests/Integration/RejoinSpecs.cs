using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Issue 10, point 3, in process: a node downed by the cluster in the middle of an outgoing migration (its guest
/// stopped for stop-copy) comes back as a new incarnation at the same address, adopts its guests once the majority
/// ownership record confirms them (running again, no migration), reports the cut-off migration as failed, the destination discards its copy, and the guest migrates.
/// </summary>
public sealed class RejoinSpecs
{
    private static readonly Config TestConfig = ConfigurationFactory.ParseString("""
        akka.actor.serialize-messages = on
        akka.loglevel = ERROR
        migration.prefault-destination = off
        """);

    [Fact]
    public async Task A_node_downed_in_stop_copy_rejoins_as_a_new_incarnation_with_its_guest_running_and_the_migration_failed()
    {
        var a = NodeHost.Start("127.0.0.1", 0, [], TestConfig);
        await a.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        var b = NodeHost.Start("127.0.0.1", 0, [a.Address], TestConfig);
        try
        {
            await b.WaitUpAsync(2, TimeSpan.FromSeconds(30));
            // All device state is stop-copy data, loaded at 1 s per MiB: stop-copy lasts seconds.
            var spec = new GuestSpec("downed-src", 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 0, Seed: 9, LoadDelayMsPerMiB: 1000),
                new DeviceSpec("net0", DeviceKind.Structured)], 8L << 20);
            Assert.IsType<GuestCreated>(await b.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(30)));
            var settings = TwoNodeCluster.Settings() with { DeviceBufferBudget = 1 << 20, MaxIterations = 1 };
            var watcher = new ReportWatcher(b.System);
            var started = Assert.IsType<MigrationStarted>(await b.Node.Ask<object>(new StartMigration(spec.Id, a.Address, settings, watcher.Actor), TimeSpan.FromSeconds(10)));
            await watcher.WaitForAsync(p => p.Phase == "stop-copy", TimeSpan.FromSeconds(60));
            var firstSystem = b.System;
            var address = b.Address;

            Akka.Cluster.Cluster.Get(a.System).Down(Akka.Cluster.Cluster.Get(b.System).SelfAddress);

            await firstSystem.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(60));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (b.Incarnation < 2 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            Assert.Equal(2, b.Incarnation);
            Assert.NotSame(firstSystem, b.System);
            Assert.False(b.Stopped.IsCompleted, "a downed node must not end");
            await b.WaitUpAsync(2, TimeSpan.FromSeconds(60));
            Assert.Equal(address, b.Address);

            // The guest is adopted: unconfirmed (paused) until the new incarnation's claim in the majority ownership record
            // is confirmed, then running, no migration, its workload resumed (RAM changes again).
            var guest = Assert.Single((await TwoNodeCluster.ListAsync(b)).Guests, g => g.VmId == spec.Id);
            var confirmBy = DateTime.UtcNow.AddSeconds(60);
            while (guest.State != "running" && DateTime.UtcNow < confirmBy)
            {
                Assert.Equal(HypervisorNode.UnconfirmedState, guest.State);
                await Task.Delay(200);
                guest = Assert.Single((await TwoNodeCluster.ListAsync(b)).Guests, g => g.VmId == spec.Id);
            }

            Assert.Equal("running", guest.State);
            Assert.Null(guest.MigrationId);
            var before = Assert.IsType<GuestDigests>(await b.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
            var changed = false;
            for (var i = 0; i < 50 && !changed; i++)
            {
                await Task.Delay(100);
                var now = Assert.IsType<GuestDigests>(await b.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
                changed = !now.Ram.SequenceEqual(before.Ram);
            }

            Assert.True(changed, "the adopted guest's workload did not resume");

            // The cut-off migration is reported failed by the new incarnation; the destination discarded its copy.
            var migrations = Assert.IsType<MigrationList>(await b.Node.Ask<object>(GetMigrations.Instance, TimeSpan.FromSeconds(10)));
            var cut = Assert.Single(migrations.Migrations, m => m.MigrationId == started.MigrationId);
            Assert.Equal("failed", cut.State);
            Assert.Contains("removed from the cluster during the migration", cut.Report!.Error);
            ActorIdentity leftover;
            var until = DateTime.UtcNow.AddSeconds(30);
            do
            {
                await Task.Delay(100);
                leftover = await a.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(0), TimeSpan.FromSeconds(5));
            }
            while (leftover.Subject is not null && DateTime.UtcNow < until);

            Assert.Null(leftover.Subject);

            // And the guest migrates (its devices went back to running).
            var again = new ReportWatcher(b.System);
            Assert.IsType<MigrationStarted>(await b.Node.Ask<object>(new StartMigration(spec.Id, a.Address, TwoNodeCluster.Settings(), again.Actor), TimeSpan.FromSeconds(10)));
            var report = await again.Finished.WaitAsync(TimeSpan.FromSeconds(90));
            Assert.True(report.Status == "completed" && report.Verified, $"{report.Status}: {report.Error}");
        }
        finally
        {
            await b.DisposeAsync();
            await a.DisposeAsync();
        }
    }
}
