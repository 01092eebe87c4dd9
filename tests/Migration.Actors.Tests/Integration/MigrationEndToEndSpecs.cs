using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>Whole migrations between two cluster nodes over real TCP channels.</summary>
[Collection("two-node cluster")]
public sealed class MigrationEndToEndSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private static GuestSpec Guest(string id, long dirtyRate, params DeviceSpec[] devices) =>
        new(id, 64L << 20, devices, dirtyRate, Devices.Workload.RamFillPattern.Mixed, Seed: 5);

    private static DeviceSpec Vfio(string id, long size, long precopy, double loadDelayMsPerMiB = 0) =>
        new(id, DeviceKind.Vfio, 0, size, precopy, Seed: id.Length * 7, DirtyRateBytesPerSecond: 1 << 20, LoadDelayMsPerMiB: loadDelayMsPerMiB);

    [Fact]
    public async Task A_guest_dirtying_RAM_throughout_migrates_and_the_destination_image_passes_the_pattern_check()
    {
        var spec = Guest("dirty", 32L << 20, Vfio("gpu0", 8 << 20, 7 << 20), new DeviceSpec("net0", DeviceKind.Structured));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var (_, watcher) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings());
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.All(report.Devices, d => Assert.True(d.DigestMatch, d.Id));
        Assert.True(report.DowntimeMs > 0);
        Assert.True(report.PeakDeviceBufferBytes <= report.DeviceBufferBudgetBytes);

        var digests = Assert.IsType<GuestDigests>(await cluster.Destination.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(30)));
        Assert.True(digests.WorkloadPatternOk, digests.PatternMessage);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.Contains((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == spec.Id && g.State == "running");

        // Progress never ran backwards.
        var progress = watcher.Progress;
        for (var i = 1; i < progress.Count; i++)
        {
            Assert.True(progress[i].BytesSent >= progress[i - 1].BytesSent);
            Assert.True(progress[i].Percent >= progress[i - 1].Percent);
        }
    }

    [Theory]
    [InlineData(CodecId.None)]
    [InlineData(CodecId.Zstd)]
    [InlineData(CodecId.Lz4)]
    public async Task Device_state_moves_over_the_channels_with_every_RAM_codec(CodecId codec)
    {
        var spec = Guest($"codec-{codec}", 8L << 20, Vfio("gpu0", 6 << 20, 4 << 20), Vfio("gpu1", 3 << 20, 0));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var (_, watcher) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings() with { Codec = codec });
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.True(report.DeviceStateBytes >= 9 << 20);
        Assert.True(report.ZeroPages > 0, "the Mixed pattern has zero pages; zero-page detection must find them");
        // Every packet of the Mixed pattern holds text pages, so the early abort leaves them to the codec.
        Assert.InRange(report.UncompressedPages, 0, codec == CodecId.None ? 0 : (report.NormalPages / 10));
    }

    [Fact]
    public async Task Random_RAM_under_zstd_goes_uncompressed_and_still_verifies()
    {
        var spec = Guest("zstd-random", 0) with { Fill = Devices.Workload.RamFillPattern.Random };
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var (_, watcher) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings() with { Codec = CodecId.Zstd });
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.True(report.NormalPages >= 4096, $"{report.NormalPages} normal pages");
        Assert.Equal(report.NormalPages, report.UncompressedPages);
    }

    [Fact]
    public async Task A_device_buffer_budget_of_a_single_chunk_still_completes()
    {
        var spec = Guest("one-chunk", 0, Vfio("a", 4 << 20, 3 << 20), Vfio("b", 4 << 20, 2 << 20));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { ChunkSize = 256 * 1024, DeviceBufferBudget = 256 * 1024 };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(256 * 1024, report.DeviceBufferBudgetBytes);
        Assert.InRange(report.PeakDeviceBufferBytes, 1, 256 * 1024);
    }

    [Fact]
    public async Task A_slow_loading_device_is_throttled_by_credit_while_RAM_keeps_flowing()
    {
        // 100 ms per MiB: the device loads at ~10 MiB/s, far slower than the channels.
        var spec = Guest("slow-load", 0, Vfio("slow", 6 << 20, 6 << 20, loadDelayMsPerMiB: 100));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { ChunkSize = 256 * 1024, DeviceBufferBudget = 1 << 20 };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);

        // While the slow device still has most of its state to send, all of RAM has already gone.
        var early = await watcher.WaitForAsync(p => p.RamBytesSent >= 48L << 20, TimeSpan.FromSeconds(30));
        Assert.True(early.DeviceBytesSent < 5L << 20, $"device bytes {early.DeviceBytesSent} when RAM reached {early.RamBytesSent}");

        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.True(report.PeakDeviceBufferBytes <= 1 << 20, $"peak {report.PeakDeviceBufferBytes}");
    }

    [Fact]
    public async Task Killing_channels_mid_precopy_reconnects_them_and_the_migration_completes_and_verifies()
    {
        // A device with much precopy state, loaded a little slower than it arrives, keeps the budget's worth of chunks in
        // flight (in socket buffers, held out of order, queued for loading) while the channels die with a reset.
        var spec = Guest("kill-channel", 32L << 20, Vfio("gpu0", 48 << 20, 48 << 20, loadDelayMsPerMiB: 10));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { ChunkSize = 256 * 1024, DeviceBufferBudget = 8 << 20 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy" && p.DeviceBytesSent >= 2 << 20, TimeSpan.FromSeconds(30));

        // Two channels at once, then one of them again once the migration has moved on.
        cluster.Source.Node.Tell(new Migration.Actors.Source.InjectChannelKill(id, 1));
        cluster.Source.Node.Tell(new Migration.Actors.Source.InjectChannelKill(id, 3));
        var sent = (await watcher.WaitForAsync(p => p.Phase == "precopy", TimeSpan.FromSeconds(30))).BytesSent;
        await watcher.WaitForAsync(p => p.BytesSent >= sent + (4 << 20) || p.Phase != "precopy", TimeSpan.FromSeconds(30));
        cluster.Source.Node.Tell(new Migration.Actors.Source.InjectChannelKill(id, 1));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.InRange(report.ChannelReconnects, 2, 3); // the third kill may land after the stop: then it is too late to matter
        Assert.True(report.PeakDeviceBufferBytes <= settings.DeviceBufferBudget, $"peak {report.PeakDeviceBufferBytes}");
        var dest = await TwoNodeCluster.ListAsync(cluster.Destination);
        Assert.Contains(dest.Guests, g => g.VmId == spec.Id && g.State == "running");
    }

    [Fact]
    public async Task A_storm_of_channel_losses_in_precopy_still_completes_and_verifies()
    {
        // Kill a channel every 100 ms while precopy lasts (up to 8 kills, channels in turn, some while reconnecting).
        var spec = Guest("kill-storm", 32L << 20, Vfio("gpu0", 64 << 20, 64 << 20, loadDelayMsPerMiB: 20));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        // A downtime limit that never fits holds the migration in precopy for the whole storm (a fast machine would
        // otherwise converge before the kills); the operator's switchover then ends it.
        var settings = TwoNodeCluster.Settings() with
        {
            ChunkSize = 256 * 1024, DeviceBufferBudget = 8 << 20, DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000,
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy" && p.DeviceBytesSent >= 1 << 20, TimeSpan.FromSeconds(30));
        var kills = 0;
        while (kills < 8 && !watcher.Finished.IsCompleted && watcher.Progress.LastOrDefault()?.Phase == "precopy")
        {
            cluster.Source.Node.Tell(new Migration.Actors.Source.InjectChannelKill(id, kills % 4));
            kills++;
            await Task.Delay(100);
        }

        Assert.IsType<SwitchoverAccepted>(await cluster.Source.Node.Ask<object>(new ForceSwitchover(id), TimeSpan.FromSeconds(30)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(8, kills);
        Assert.InRange(report.ChannelReconnects, 1, kills);
        Assert.True(report.PeakDeviceBufferBytes <= settings.DeviceBufferBudget, $"peak {report.PeakDeviceBufferBytes}");
    }

    [Fact]
    public async Task With_reconnect_off_killing_one_channel_mid_precopy_fails_cleanly_and_the_guest_keeps_running_on_the_source()
    {
        var spec = Guest("kill-channel-off", 16L << 20, Vfio("gpu0", 16 << 20, 16 << 20, loadDelayMsPerMiB: 200));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        // A downtime limit that never fits keeps the migration in precopy until the channel dies.
        var settings = TwoNodeCluster.Settings() with
        {
            DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000, ChannelReconnectTimeout = TimeSpan.Zero,
        };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy" && p.Iteration >= 2, TimeSpan.FromSeconds(30));

        cluster.Source.Node.Tell(new Migration.Actors.Source.InjectChannelKill(id, 2));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("failed", report.Status);
        Assert.Contains("channel", report.Error);
        Assert.Equal(0, report.ChannelReconnects);
        await AssertGuestStillRunsOnSource(spec.Id);
    }

    [Fact]
    public async Task Cancel_during_precopy_leaves_the_guest_running_on_the_source()
    {
        // A slow device keeps precopy busy for seconds.
        var spec = Guest("cancel", 16L << 20, Vfio("gpu0", 16 << 20, 16 << 20, loadDelayMsPerMiB: 200));
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var settings = TwoNodeCluster.Settings() with { DowntimeLimit = TimeSpan.FromMilliseconds(0.001), MaxIterations = 10_000 };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "precopy", TimeSpan.FromSeconds(30));

        Assert.IsType<CancelAccepted>(await cluster.Source.Node.Ask<object>(new CancelMigration(id), TimeSpan.FromSeconds(10)));
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("cancelled", report.Status);
        await AssertGuestStillRunsOnSource(spec.Id);
    }

    private async Task AssertGuestStillRunsOnSource(string vmId)
    {
        var source = await TwoNodeCluster.ListAsync(cluster.Source);
        var entry = Assert.Single(source.Guests, g => g.VmId == vmId);
        Assert.Equal("running", entry.State);
        Assert.Null(entry.MigrationId);

        // The destination released everything: no guest, and no incoming migration actor left.
        await AwaitAsync(async () =>
        {
            var dest = await TwoNodeCluster.ListAsync(cluster.Destination);
            Assert.DoesNotContain(dest.Guests, g => g.VmId == vmId);
            var incoming = await cluster.Destination.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(1), TimeSpan.FromSeconds(5));
            Assert.Null(incoming.Subject);
        });

        // The source guest's workload still runs (its vCPU keeps dirtying RAM).
        var before = Assert.IsType<GuestDigests>(await cluster.Source.Node.Ask<object>(new GetGuestDigests(vmId), TimeSpan.FromSeconds(10)));
        await AwaitAsync(async () =>
        {
            var after = Assert.IsType<GuestDigests>(await cluster.Source.Node.Ask<object>(new GetGuestDigests(vmId), TimeSpan.FromSeconds(10)));
            Assert.NotEqual(before.Ram, after.Ram);
        });
    }

    private static async Task AwaitAsync(Func<Task> assertion, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
