using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// A migration that completes does not warn about its own end: the destination's incoming migration stops after the
/// resume, and the source's peer watch must not report that as a loss (it did after every migration, see any `bench`).
/// </summary>
[Collection("two-node cluster")]
public sealed class QuietEndSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    [Fact]
    public async Task A_completed_migration_logs_no_warning_that_the_destinations_migration_actor_stopped()
    {
        var warnings = new ConcurrentQueue<string>();
        var collector = cluster.Source.System.ActorOf(Props.Create(() => new Collector(warnings)));
        cluster.Source.System.EventStream.Subscribe(collector, typeof(Warning));
        var spec = new GuestSpec("quiet-end", 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 2 << 20, 0, Seed: 3)], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);

        var (id, watcher) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings());
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.True(report.Status == "completed" && report.Verified, $"{report.Status}: {report.Error}");

        // The coordinator (and its peer watch, a child) is stopped by the node right after the report: wait for that.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var left = await cluster.Source.System.ActorSelection($"/user/node/migration-{id:N}").Ask<ActorIdentity>(new Identify(0), TimeSpan.FromSeconds(10));
        while (left.Subject is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            left = await cluster.Source.System.ActorSelection($"/user/node/migration-{id:N}").Ask<ActorIdentity>(new Identify(0), TimeSpan.FromSeconds(10));
        }

        Assert.Null(left.Subject);
        cluster.Source.System.EventStream.Unsubscribe(collector);
        await collector.Ask<ActorIdentity>(new Identify(1), TimeSpan.FromSeconds(10)); // behind every warning it was sent
        Assert.DoesNotContain(warnings, w => w.Contains("migration actor", StringComparison.Ordinal) && w.Contains("stopped", StringComparison.Ordinal));
    }

    private sealed class Collector : ReceiveActor
    {
        public Collector(ConcurrentQueue<string> into) => Receive<Warning>(w => into.Enqueue(w.Message?.ToString() ?? ""));
    }
}
