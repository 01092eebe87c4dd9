using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// An injected slow-load belongs to the migration it was given for: it travels in the migration parameters, the
/// destination applies it to that migration's devices, and the guest's spec never carries it. A recording node (an
/// ActorSystem named like a node, refusing every prepare) shows what each migration's PrepareIncoming carried.
/// </summary>
[Collection("two-node cluster")]
public sealed class SlowLoadScopeSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>, IAsyncLifetime
{
    private ActorSystem _recorder = null!;
    private readonly List<PrepareIncoming> _prepares = [];

    public Task InitializeAsync()
    {
        var config = ConfigurationFactory.ParseString("""
            akka.actor.provider = remote
            akka.actor.serialize-messages = on
            akka.loglevel = WARNING
            """).WithFallback(NodeHost.ReferenceConfig());
        _recorder = ActorSystem.Create(NodeHost.SystemName, config);
        _recorder.ActorOf(Props.Create(() => new RecordingNode(_prepares)), HypervisorNode.Name);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _recorder.Terminate();

    private string RecorderAddress => ((ExtendedActorSystem)_recorder).Provider.DefaultAddress.ToString();

    [Fact]
    public async Task A_guest_migrated_once_with_slow_load_is_prepared_without_any_load_delay_the_next_time()
    {
        var spec = new GuestSpec("slow-once", 16L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 2 << 20, 1 << 20, Seed: 5)], 4L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);

        // 1. Asked of the recording node: the delay is in the parameters, not in the spec.
        var slow = TwoNodeCluster.Settings() with { Inject = [new FaultInjection(FaultInjection.SlowLoad, "load", 0, "gpu0", 30)] };
        var first = await PreparedBy(cluster.Source, spec.Id, slow);
        Assert.Equal([new SlowLoad("gpu0", 30)], first.Parameters.SlowLoads);
        Assert.Equal(0, Assert.Single(first.Spec.Devices).LoadDelayMsPerMiB);

        // 2. The real migration with slow-load completes (the destination loads gpu0 with the delay).
        var (_, watcher) = await cluster.StartAsync(spec.Id, slow);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);

        // 3. Its next migration, without --inject, asks for no delay and the guest's spec on the new node has none.
        var next = await PreparedBy(cluster.Destination, spec.Id, TwoNodeCluster.Settings());
        Assert.Empty(next.Parameters.SlowLoads);
        Assert.Equal(0, Assert.Single(next.Spec.Devices).LoadDelayMsPerMiB);
        Assert.Equal(spec with { Devices = next.Spec.Devices }, next.Spec);
        Assert.Equal(spec.Devices[0], next.Spec.Devices[0]);
    }

    /// <summary>Starts a migration of <paramref name="vmId"/> from <paramref name="from"/> to the recording node; returns the PrepareIncoming it got.</summary>
    private async Task<PrepareIncoming> PreparedBy(NodeHost from, string vmId, MigrationSettings settings)
    {
        var count = _prepares.Count;
        var watcher = new ReportWatcher(from.System);
        Assert.IsType<MigrationStarted>(await from.Node.Ask<object>(new StartMigration(vmId, RecorderAddress, settings, watcher.Actor), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("failed", report.Status);
        Assert.Contains("recording node", report.Error);
        lock (_prepares)
        {
            return _prepares.Skip(count).Single();
        }
    }

    /// <summary>Plays a destination node: records each PrepareIncoming and refuses it.</summary>
    private sealed class RecordingNode : ReceiveActor
    {
        public RecordingNode(List<PrepareIncoming> seen)
        {
            Receive<PrepareIncoming>(p =>
            {
                lock (seen)
                {
                    seen.Add(p);
                }

                Sender.Tell(new PrepareRefused(p.MigrationId, "recording node: refused after recording"));
            });
        }
    }
}
