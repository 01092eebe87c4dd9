using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// The source node's answer to QueryHandover, asked across the cluster from the destination node as an
/// IncomingMigration in doubt asks it (Hyperion over Akka.Remote, serialize-messages on).
/// </summary>
[Collection("two-node cluster")]
public sealed class HandoverQuerySpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private Task<HandoverStatus> AskSourceAsync(Guid id) =>
        cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));

    [Fact]
    public async Task The_source_node_answers_handed_over_for_a_completed_migration()
    {
        var spec = new GuestSpec("query-completed", 16L << 20, [new DeviceSpec("net0", DeviceKind.Structured)], 4L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var (id, watcher) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings() with { MaxIterations = 3 });
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", report.Status);

        var status = await AskSourceAsync(id);
        Assert.Equal(id, status.MigrationId);
        Assert.Equal(HandoverDecision.HandedOver, status.Decision);
    }

    [Fact]
    public async Task The_source_node_answers_in_progress_before_the_hand_over_then_kept_by_source_once_cancelled()
    {
        // A device loading at 300 ms per MiB keeps the migration in precopy long enough to ask.
        var spec = new GuestSpec("query-cancelled", 16L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 8 << 20, Seed: 5)], 4L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        FaultInjection.TryParse("slow-load:gpu0=300", out var slow, out _);
        var settings = TwoNodeCluster.Settings() with
        {
            Inject = [slow],
            DeviceBufferBudget = 1 << 20,
            MaxIterations = 10_000,
            DowntimeLimit = TimeSpan.FromMilliseconds(0.001),
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy", TimeSpan.FromSeconds(30));

        Assert.Equal(HandoverDecision.InProgress, (await AskSourceAsync(id)).Decision);

        Assert.IsType<CancelAccepted>(await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("cancelled", report.Status);
        Assert.Equal(HandoverDecision.KeptBySource, (await AskSourceAsync(id)).Decision);
        Assert.Equal("running", Assert.Single((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id).State);
    }

    [Fact]
    public async Task The_source_node_answers_unknown_for_a_migration_it_never_ran()
    {
        var id = Guid.NewGuid();
        var status = await AskSourceAsync(id);
        Assert.Equal(id, status.MigrationId);
        Assert.Equal(HandoverDecision.Unknown, status.Decision);
    }
}
