using Migration.Actors.Messages;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>The report of a whole migration carries its timeline (and it crosses the serializer: serialize-messages is on).</summary>
[Collection("two-node cluster")]
public sealed class TimelineSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    [Fact]
    public async Task A_completed_migration_reports_a_timeline_whose_downtime_and_iterations_match_the_report()
    {
        var spec = new GuestSpec("timeline", 32L << 20,
            [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 3 << 20, Seed: 3, DirtyRateBytesPerSecond: 1 << 20)], 16L << 20, Devices.Workload.RamFillPattern.Mixed, Seed: 9);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var (_, watcher) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings());
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Timeline.Count >= 2, $"{report.Timeline.Count} samples");
        for (var i = 1; i < report.Timeline.Count; i++)
        {
            Assert.True(report.Timeline[i].TimeMs >= report.Timeline[i - 1].TimeMs);
            Assert.True(report.Timeline[i].RamBytesSent >= report.Timeline[i - 1].RamBytesSent);
            Assert.True(report.Timeline[i].DeviceBytesSent >= report.Timeline[i - 1].DeviceBytesSent);
        }

        // The last sample is taken at the end: it has every byte the report counts.
        Assert.Equal(report.RamWireBytes, report.Timeline[^1].RamBytesSent);
        Assert.Equal(report.DeviceStateBytes, report.Timeline[^1].DeviceBytesSent);
        Assert.Equal(report.WireBytes - report.RamWireBytes > 0, report.DeviceStateBytes > 0);
        var stop = Assert.Single(report.TimelineEvents, e => e.Kind == TimelineEventKinds.Stop);
        var resume = Assert.Single(report.TimelineEvents, e => e.Kind == TimelineEventKinds.Resume);
        Assert.Equal(report.DowntimeMs, resume.TimeMs - stop.TimeMs, 3);
        Assert.Equal(Enumerable.Range(1, report.Iterations).Select(i => (long)i),
            report.TimelineEvents.Where(e => e.Kind == TimelineEventKinds.Iteration).Select(e => e.Value));
        Assert.All(report.Timeline, s => Assert.Equal(report.DeviceBufferBudgetBytes, s.DeviceBufferBudgetBytes));
    }
}
