using Akka.Actor;
using Migration.Actors.Drain;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// The cordon as the nodes enforce it, through the drain coordinator singleton of a real two-node cluster: a cordoned
/// node answers PrepareIncoming with PrepareRefused and CreateGuest with CommandFailed("cordoned"), a source refuses to
/// start a migration towards it, and uncordon lifts all of it. Bad drain commands get a clear refusal.
/// (serialize-messages is off in this cluster: see <see cref="DrainCluster"/>.)
/// </summary>
public sealed class CordonSpecs(DrainCluster cluster) : IClassFixture<DrainCluster>
{
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(60); // generous: the machine may be loaded

    private static GuestSpec Guest(string id) => new(id, 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 3 << 20, Seed: 5)], 4L << 20);

    private ActorSelection Drain(Akka.Actor.ActorSystem from) => from.ActorSelection($"/user/{DrainCoordinator.ProxyName}");

    [Fact]
    public async Task A_cordoned_node_refuses_incoming_migrations_and_new_guests_until_uncordon()
    {
        var guest = Guest("cordon-probe");
        Assert.IsType<GuestCreated>(await cluster.Source.Node.Ask<object>(new CreateGuest(guest), Ask));
        var destination = cluster.Destination.Address;

        var started = await Drain(cluster.Source.System).Ask<object>(new StartDrain(destination, 1, [], TwoNodeCluster.Settings()), Ask);
        Assert.Equal(destination, Assert.IsType<DrainStarted>(started).Drain.Node);

        // The nodes learn the cordon through replication. The destination's own view first (its capacity answer says it),
        // then each refusal is asked once.
        await Eventually(async () => await cluster.Destination.Node.Ask<NodeCapacity>(GetCapacity.Instance, Ask) is { Cordoned: true } c ? c : null);
        var refused = Assert.IsType<PrepareRefused>(
            await cluster.Destination.Node.Ask<object>(new PrepareIncoming(Guid.NewGuid(), Guest("incoming"), MigrationParameters.From(TwoNodeCluster.Settings()), ActorRefs.Nobody), Ask));
        Assert.Contains($"node {destination} is cordoned", refused.Reason);
        var noGuest = Assert.IsType<CommandFailed>(await cluster.Destination.Node.Ask<object>(new CreateGuest(Guest("new-on-cordoned")), Ask));
        Assert.Equal("cordoned", noGuest.Code);

        // The source's view: probed with settings it would refuse anyway (checked after the cordon), so nothing starts.
        await UntilSourceAnswers("cordoned", destination);
        var noStart = Assert.IsType<CommandFailed>(await cluster.Source.Node.Ask<object>(new StartMigration(guest.Id, destination, TwoNodeCluster.Settings(), null), Ask));
        Assert.Equal("cordoned", noStart.Code);
        Assert.Contains($"destination {destination} is cordoned", noStart.Reason);

        var list = Assert.IsType<DrainList>(await Drain(cluster.Destination.System).Ask<object>(GetDrains.Instance, Ask));
        Assert.Contains(destination, list.Cordoned);

        Assert.IsType<Uncordoned>(await Drain(cluster.Destination.System).Ask<object>(new Uncordon(destination), Ask));
        await Eventually(async () => await cluster.Destination.Node.Ask<NodeCapacity>(GetCapacity.Instance, Ask) is { Cordoned: false } c ? c : null);
        await UntilSourceAnswers("bad-settings", destination);

        // Lifted: the same migration now starts and completes.
        var watcher = new ReportWatcher(cluster.Source.System);
        Assert.IsType<MigrationStarted>(await cluster.Source.Node.Ask<object>(new StartMigration(guest.Id, destination, TwoNodeCluster.Settings(), watcher.Actor), Ask));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        var empty = Assert.IsType<DrainList>(await Drain(cluster.Source.System).Ask<object>(GetDrains.Instance, Ask));
        Assert.DoesNotContain(destination, empty.Cordoned);
    }

    private async Task UntilSourceAnswers(string code, string destination) =>
        await Eventually(async () => await cluster.Source.Node.Ask<object>(
            new StartMigration("cordon-probe", destination, TwoNodeCluster.Settings(channels: 0), null), Ask) is CommandFailed f && f.Code == code ? f : null);

    [Fact]
    public async Task A_drain_with_bad_arguments_is_refused_with_what_was_wrong()
    {
        var drain = Drain(cluster.Source.System);
        var node = cluster.Source.Address;

        var zero = Assert.IsType<CommandFailed>(await drain.Ask<object>(new StartDrain(node, 0, [], TwoNodeCluster.Settings()), Ask));
        Assert.Equal("bad-settings", zero.Code);
        Assert.Contains("--max-parallel 0", zero.Reason);

        var unknown = Assert.IsType<CommandFailed>(await drain.Ask<object>(new StartDrain("akka.tcp://mig@127.0.0.1:1", 1, [], TwoNodeCluster.Settings()), Ask));
        Assert.Equal("unknown-node", unknown.Code);

        var self = Assert.IsType<CommandFailed>(await drain.Ask<object>(new StartDrain(node, 1, [node], TwoNodeCluster.Settings()), Ask));
        Assert.Equal("bad-settings", self.Code);

        var badSettings = Assert.IsType<CommandFailed>(await drain.Ask<object>(new StartDrain(node, 1, [], TwoNodeCluster.Settings(channels: 0)), Ask));
        Assert.Equal("bad-settings", badSettings.Code);
    }

    /// <summary>Repeats <paramref name="attempt"/> until it gives a result (the cordon replicates within seconds).</summary>
    private static async Task<T> Eventually<T>(Func<Task<T?>> attempt)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (await attempt() is { } result)
            {
                return result;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no {typeof(T).Name} within 20 s");
            await Task.Delay(100);
        }
    }
}
