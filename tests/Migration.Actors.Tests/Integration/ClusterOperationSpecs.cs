using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>Operating rules of the node: concurrency, refusals.</summary>
[Collection("two-node cluster")]
public sealed class ClusterOperationSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private static GuestSpec Guest(string id) =>
        new(id, 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 3 << 20, Seed: 3), new DeviceSpec("net0", DeviceKind.Structured)], 8L << 20);

    [Fact]
    public async Task Two_guests_migrating_at_once_in_opposite_directions_both_complete_and_verify()
    {
        var east = Guest("east");
        var west = Guest("west");
        await cluster.CreateGuestAsync(cluster.Source, east);
        await cluster.CreateGuestAsync(cluster.Destination, west);

        var (_, a) = await cluster.StartAsync(east.Id, TwoNodeCluster.Settings());
        var (_, b) = await cluster.StartAsync(west.Id, TwoNodeCluster.Settings(), from: cluster.Destination, to: cluster.Source);
        var reports = await Task.WhenAll(a.Finished, b.Finished).WaitAsync(TimeSpan.FromSeconds(90));

        Assert.All(reports, r =>
        {
            Assert.Equal("completed", r.Status);
            Assert.True(r.Verified, r.Error);
        });
        Assert.Contains((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == "east");
        Assert.Contains((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == "west");

        // The cluster's replicated record (Akka.DistributedData) converges on the new owners, as seen from both nodes.
        foreach (var node in new[] { cluster.Source, cluster.Destination })
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            GuestOwners owners;
            do
            {
                owners = Assert.IsType<GuestOwners>(await node.Node.Ask<object>(GetOwners.Instance, TimeSpan.FromSeconds(5)));
                if (owners.Owners.GetValueOrDefault("east") == cluster.Destination.Address && owners.Owners.GetValueOrDefault("west") == cluster.Source.Address)
                {
                    break;
                }

                await Task.Delay(200);
            }
            while (DateTime.UtcNow < deadline);

            Assert.Equal(cluster.Destination.Address, owners.Owners["east"]);
            Assert.Equal(cluster.Source.Address, owners.Owners["west"]);
        }
    }

    [Fact]
    public async Task A_second_migration_of_a_guest_that_is_already_migrating_is_refused()
    {
        var spec = new GuestSpec("busy", 16L << 20, [new DeviceSpec("slow", DeviceKind.Vfio, 0, 8 << 20, 8 << 20, LoadDelayMsPerMiB: 100)]);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);

        var second = await cluster.Source.Node.Ask<object>(new StartMigration(spec.Id, cluster.Destination.Address, settings, null), TimeSpan.FromSeconds(10));
        var refused = Assert.IsType<CommandFailed>(second);
        Assert.Equal("already-migrating", refused.Code);
        Assert.Contains(id.ToString(), refused.Reason);

        await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10));
        Assert.Equal("cancelled", (await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30))).Status);
    }

    [Fact]
    public async Task A_start_asked_again_under_the_callers_id_answers_for_the_migration_it_already_is_and_that_id_is_refused_for_another_guest()
    {
        await cluster.CreateGuestAsync(cluster.Source, Guest("twice"));
        await cluster.CreateGuestAsync(cluster.Source, Guest("other"));
        var settings = TwoNodeCluster.Settings();
        var id = Guid.NewGuid();
        var first = new ReportWatcher(cluster.Source.System);
        var started = await cluster.Source.Node.Ask<object>(new StartMigration("twice", cluster.Destination.Address, settings, first.Actor, id), TimeSpan.FromSeconds(10));
        Assert.Equal(id, Assert.IsType<MigrationStarted>(started).MigrationId);

        // Asked again (a drain coordinator that took over): the same migration, not a second one or an "already migrating".
        var again = new ReportWatcher(cluster.Source.System);
        var second = await cluster.Source.Node.Ask<object>(new StartMigration("twice", cluster.Destination.Address, settings, again.Actor, id), TimeSpan.FromSeconds(10));
        Assert.Equal(id, Assert.IsType<MigrationStarted>(second).MigrationId);

        var misused = await cluster.Source.Node.Ask<object>(new StartMigration("other", cluster.Destination.Address, settings, null, id), TimeSpan.FromSeconds(10));
        var refused = Assert.IsType<CommandFailed>(misused);
        Assert.Equal("bad-settings", refused.Code);
        Assert.Contains("twice", refused.Reason);
        var empty = await cluster.Source.Node.Ask<object>(new StartMigration("other", cluster.Destination.Address, settings, null, Guid.Empty), TimeSpan.FromSeconds(10));
        Assert.Equal("bad-settings", Assert.IsType<CommandFailed>(empty).Code);

        var report = await first.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", report.Status);
        Assert.Equal(id, (await again.Finished.WaitAsync(TimeSpan.FromSeconds(10))).MigrationId);

        // After the end too: the answer is the ended migration, whose report the new subscriber gets.
        var late = new ReportWatcher(cluster.Source.System);
        var third = await cluster.Source.Node.Ask<object>(new StartMigration("twice", cluster.Destination.Address, settings, late.Actor, id), TimeSpan.FromSeconds(10));
        Assert.Equal(id, Assert.IsType<MigrationStarted>(third).MigrationId);
        Assert.Equal("completed", (await late.Finished.WaitAsync(TimeSpan.FromSeconds(10))).Status);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == "twice");
    }

    [Fact]
    public async Task Migrating_to_the_node_the_guest_runs_on_or_an_unknown_guest_is_refused()
    {
        await cluster.CreateGuestAsync(cluster.Source, Guest("home"));
        var same = await cluster.Source.Node.Ask<object>(new StartMigration("home", cluster.Source.Address, TwoNodeCluster.Settings(), null), TimeSpan.FromSeconds(10));
        Assert.Equal("same-node", Assert.IsType<CommandFailed>(same).Code);
        var unknown = await cluster.Source.Node.Ask<object>(new StartMigration("ghost", cluster.Destination.Address, TwoNodeCluster.Settings(), null), TimeSpan.FromSeconds(10));
        Assert.Equal("unknown-guest", Assert.IsType<CommandFailed>(unknown).Code);
    }
}

/// <summary>A destination without room for the guest refuses at prepare; the guest stays on the source.</summary>
public sealed class DestinationCapacitySpecs
{
    [Fact]
    public async Task A_destination_without_room_refuses_at_prepare_and_the_guest_keeps_running_on_the_source()
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = ERROR\nakka.actor.serialize-messages = on");
        await using var source = NodeHost.Start("127.0.0.1", 0, [], config);
        await source.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        var small = ConfigurationFactory.ParseString("migration.node-memory-capacity = 48MiB").WithFallback(config);
        await using var destination = NodeHost.Start("127.0.0.1", 0, [source.Address], small);
        await destination.WaitUpAsync(2, TimeSpan.FromSeconds(30));

        var spec = new GuestSpec("big", 64L << 20, [], 4L << 20);
        Assert.IsType<GuestCreated>(await source.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(30)));
        var watcher = new ReportWatcher(source.System);
        Assert.IsType<MigrationStarted>(await source.Node.Ask<object>(new StartMigration("big", destination.Address, TwoNodeCluster.Settings(), watcher.Actor), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("failed", report.Status);
        Assert.Contains("lacks memory", report.Error);
        var list = Assert.IsType<GuestList>(await source.Node.Ask<object>(ListGuests.Instance, TimeSpan.FromSeconds(5)));
        Assert.Equal("running", Assert.Single(list.Guests).State);

        // Creating a guest that does not fit is refused the same way.
        var create = await destination.Node.Ask<object>(new CreateGuest(spec with { Id = "big2" }), TimeSpan.FromSeconds(10));
        Assert.Equal("no-memory", Assert.IsType<CommandFailed>(create).Code);
    }
}
