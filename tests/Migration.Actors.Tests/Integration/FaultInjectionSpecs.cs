using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Devices.Workload;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>Faults injected through the migration's own settings (the CLI's --inject).</summary>
[Collection("two-node cluster")]
public sealed class FaultInjectionSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private static GuestSpec Guest(string id) =>
        new(id, 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 3 << 20, Seed: 3), new DeviceSpec("net0", DeviceKind.Structured)], 8L << 20);

    private static FaultInjection Parse(string text) =>
        FaultInjection.TryParse(text, out var f, out var e) ? f : throw new ArgumentException(e);

    [Theory]
    [InlineData("corrupt-packet@precopy")]
    [InlineData("corrupt-packet@stopcopy")]
    public async Task A_corrupted_packet_is_detected_and_the_guest_keeps_running_on_the_source(string inject)
    {
        var spec = Guest("corrupt-" + inject.Split('@')[1]);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { Inject = [Parse(inject)], MaxIterations = 3 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("failed", report.Status);
        Assert.Contains("checksum", report.Error);
        Assert.False(report.Verified);
        // A destination asking the source node what became of the guest hears that the source kept it.
        var status = await cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(HandoverDecision.KeptBySource, status.Decision);
        var source = await TwoNodeCluster.ListAsync(cluster.Source);
        Assert.Equal("running", Assert.Single(source.Guests, g => g.VmId == spec.Id).State);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
    }

    // Under zstd the re-sent packets of the lost channel take both encoder paths: Mixed RAM is compressed, Random RAM
    // goes out raw under the codec (early abort), and the fresh connection's receiver must take either.
    [Theory]
    [InlineData(CodecId.None, RamFillPattern.Mixed)]
    [InlineData(CodecId.Zstd, RamFillPattern.Mixed)]
    [InlineData(CodecId.Zstd, RamFillPattern.Random)]
    public async Task A_channel_dropped_in_precopy_reconnects_and_the_migration_completes_and_verifies(CodecId codec, RamFillPattern fill)
    {
        var spec = Guest($"drop-precopy-{codec}-{fill}") with { Fill = fill };
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { Inject = [Parse("drop-channel:1@precopy")], Codec = codec };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(1, report.ChannelReconnects);
        if (codec == CodecId.Zstd && fill == RamFillPattern.Random)
        {
            Assert.Equal(report.NormalPages, report.UncompressedPages);
        }
        else if (codec == CodecId.Zstd)
        {
            Assert.InRange(report.UncompressedPages, 0, report.NormalPages / 10);
        }
        else
        {
            Assert.Equal(0, report.UncompressedPages);
        }
        Assert.Contains((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id && g.State == "running");
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
    }

    [Fact]
    public async Task A_channel_dropped_after_the_stop_fails_the_migration_and_the_guest_resumes_on_the_source()
    {
        var spec = Guest("drop-stopcopy");
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { Inject = [Parse("drop-channel:1@stopcopy")], MaxIterations = 3 };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("failed", report.Status);
        Assert.Contains("channel 1", report.Error);
        Assert.Equal(0, report.ChannelReconnects);
        Assert.Equal("running", Assert.Single((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id).State);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id);
        var before = Assert.IsType<GuestDigests>(await cluster.Source.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
        await Task.Delay(300);
        var after = Assert.IsType<GuestDigests>(await cluster.Source.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
        Assert.NotEqual(before.Ram, after.Ram); // the stopped guest runs again
    }

    [Fact]
    public async Task A_slow_loading_destination_device_still_completes_within_the_budget()
    {
        var spec = Guest("slow-inject");
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { Inject = [Parse("slow-load:gpu0=40")], DeviceBufferBudget = 512 * 1024 };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.True(report.PeakDeviceBufferBytes <= 512 * 1024);
        // 4 MiB at 40 ms/MiB: at least 160 ms of loading happened somewhere in the migration.
        Assert.True(report.TotalMs >= 160, $"total {report.TotalMs} ms");
    }

    [Fact]
    public async Task A_dropped_commit_is_resolved_by_the_destination_asking_the_source_and_the_guest_runs_on_the_destination_only()
    {
        var spec = Guest("drop-commit");
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var commitTimeout = TimeSpan.FromSeconds(1);
        var settings = TwoNodeCluster.Settings() with { Inject = [Parse("drop-commit")], CommitTimeout = commitTimeout, MaxIterations = 3 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        // Completed, not "handed-over" or "failed": the destination resumed and confirmed within the source's wait.
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.All(report.Devices, d => Assert.True(d.DigestMatch, d.Id));
        // The guest stayed paused until the destination gave up waiting for the commit and asked: proof that no
        // CommitMigration was sent and that the query path resumed it.
        Assert.True(report.DowntimeMs >= commitTimeout.TotalMilliseconds, $"downtime {report.DowntimeMs} ms");

        // Exactly one node runs it: gone from the source, running on the destination, its RAM pattern intact.
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        var destination = await TwoNodeCluster.ListAsync(cluster.Destination);
        Assert.Equal("running", Assert.Single(destination.Guests, g => g.VmId == spec.Id).State);
        var digests = Assert.IsType<GuestDigests>(await cluster.Destination.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(10)));
        Assert.True(digests.WorkloadPatternOk, digests.PatternMessage);

        // And the source node still says so, to anyone who asks.
        var status = await cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(HandoverDecision.HandedOver, status.Decision);
    }

    [Theory]
    [InlineData("drop-channel:1@precopy", "drop-channel", "precopy", 1)]
    [InlineData("corrupt-packet@stop-copy", "corrupt-packet", "stopcopy", 0)]
    [InlineData("slow-load:gpu0", "slow-load", "load", 0)]
    [InlineData("drop-commit", "drop-commit", "commit", 0)]
    [InlineData("DROP-COMMIT", "drop-commit", "commit", 0)]
    public void Fault_specs_parse(string text, string kind, string phase, int channel)
    {
        var f = Parse(text);
        Assert.Equal(kind, f.Kind);
        Assert.Equal(phase, f.Phase);
        Assert.Equal(channel, f.Channel);
    }

    [Theory]
    [InlineData("drop-channel@precopy")]
    [InlineData("corrupt-packet@later")]
    [InlineData("explode")]
    [InlineData("slow-load:gpu0=fast")]
    [InlineData("drop-commit@precopy")]
    [InlineData("drop-commit@commit")]
    [InlineData("drop-commit:1")]
    public void Bad_fault_specs_are_refused(string text) =>
        Assert.False(FaultInjection.TryParse(text, out _, out _));
}
