using System.Diagnostics;
using Migration.Devices.Device;
using Migration.Devices.Device.Vfio;
using Xunit;

namespace Migration.Devices.Tests.Device;

public sealed class SimulatedVfioDeviceTests
{
    internal static SimulatedVfioOptions Options(long size, long precopy, int region = 4096, long rate = 0) => new()
    {
        Id = "gpu0",
        StateSizeBytes = size,
        PrecopyBytes = precopy,
        RegionSize = region,
        Seed = 42,
        DirtyRateBytesPerSecond = rate,
    };

    [Theory]
    [InlineData(1)]
    [InlineData(4097)]
    [InlineData(1 << 20)]
    public void Save_with_dirtying_during_precopy_loads_into_a_fresh_device_with_equal_digest(int chunkSize)
    {
        long size = chunkSize == 1 ? 40_000 : 3_000_000; // last region shorter than the others
        var options = Options(size, size / 2, region: chunkSize == 1 ? 1000 : 4096);
        var source = new SimulatedVfioDevice(options);
        int reads = 0;
        var chunks = DeviceStreams.Save(source, chunkSize, d =>
        {
            if (reads++ % 7 == 0 && reads < 200_000)
                ((SimulatedVfioDevice)d).SimulateActivity(3000);
        }, maxPrecopyRounds: chunkSize == 1 ? 200_000 : 1000);
        Assert.True(source.RegionsDirtied > 0);
        Assert.Equal(DeviceMigrationState.Stop, source.State);

        var destination = new SimulatedVfioDevice(options);
        DeviceStreams.Load(destination, chunks);
        Assert.Equal(DeviceMigrationState.Stop, destination.State);
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
    }

    [Fact]
    public void Precopy_reports_initial_then_dirty_bytes_and_stop_copy_is_exact()
    {
        var source = new SimulatedVfioDevice(Options(10 * 4096, 4 * 4096));
        source.StartPrecopy();
        Assert.Equal(new PrecopyInfo(4 * (16 + 4096), 0), source.QueryPrecopy());
        var buffer = new byte[100_000];
        Assert.Equal(4 * (16 + 4096), source.ReadPrecopy(buffer));
        Assert.Equal(0, source.ReadPrecopy(buffer));
        Assert.Equal(default, source.QueryPrecopy());
        source.SimulateActivity(20 * 4096); // dirties some sent regions, some not
        PrecopyInfo info = source.QueryPrecopy();
        Assert.Equal(0, info.InitialBytes);
        Assert.Equal(info.DirtyBytes, source.ReadPrecopy(buffer));

        source.StartStopCopy();
        long expected = source.StopCopyRemainingBytes;
        long total = 0;
        int n;
        while ((n = source.ReadStopCopy(buffer.AsSpan(0, 777))) > 0)
        {
            total += n;
            Assert.Equal(expected - total, source.StopCopyRemainingBytes);
        }
        Assert.Equal(expected, total);
        Assert.True(total >= 6 * (16 + 4096));
    }

    [Fact]
    public void Rate_based_dirtying_happens_lazily_while_running()
    {
        var source = new SimulatedVfioDevice(Options(1 << 20, 1 << 20, rate: 100L << 20));
        source.StartPrecopy();
        var buffer = new byte[1 << 16];
        while (source.ReadPrecopy(buffer) > 0) { }
        Thread.Sleep(30);
        Assert.True(source.QueryPrecopy().DirtyBytes > 0);
        Assert.True(source.RegionsDirtied > 0);
        source.StartStopCopy();
        long dirtied = source.RegionsDirtied;
        Thread.Sleep(20);
        Assert.Equal(dirtied, source.RegionsDirtied); // frozen once stopped
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(100_000L)]
    public void Precopy_of_nothing_and_of_everything_both_round_trip(long precopy)
    {
        var options = Options(100_000, precopy, region: 8192);
        var source = new SimulatedVfioDevice(options);
        source.StartPrecopy();
        Assert.Equal(precopy == 0 ? 0 : 100_000 + 13 * 16, source.QueryPrecopy().InitialBytes);
        source.AbortToRunning();
        var chunks = DeviceStreams.Save(source, 5000);
        var destination = new SimulatedVfioDevice(options);
        DeviceStreams.Load(destination, chunks);
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
    }

    [Fact]
    public void A_region_with_another_version_changes_the_digest()
    {
        var a = new SimulatedVfioDevice(Options(50_000, 0));
        var b = new SimulatedVfioDevice(Options(50_000, 0));
        Assert.Equal(a.ComputeDigest(), b.ComputeDigest());
        b.SimulateActivity(1);
        Assert.NotEqual(a.ComputeDigest(), b.ComputeDigest());
    }

    private static (SimulatedVfioOptions, List<byte[]>) SavedStream()
    {
        var options = Options(64 * 1024, 32 * 1024);
        var chunks = DeviceStreams.Save(new SimulatedVfioDevice(options), 4000);
        return (options, chunks);
    }

    [Fact]
    public void Out_of_order_chunk_is_detected_and_puts_the_device_in_Error()
    {
        var (options, chunks) = SavedStream();
        var d = new SimulatedVfioDevice(options);
        d.StartResuming();
        d.WriteChunk(0, chunks[0]);
        d.WriteChunk(1, chunks[1]);
        d.WriteChunk(2, chunks[2]);
        d.WriteChunk(3, chunks[3]);
        var e = Assert.Throws<DeviceStateException>(() => d.WriteChunk(5, chunks[5]));
        Assert.Equal("device gpu0: chunk 5 written after chunk 3; expected 4", e.Message);
        Assert.Equal(DeviceMigrationState.Error, d.State);
        Assert.Throws<DeviceStateException>(() => d.WriteChunk(4, chunks[4]));
        d.Reset();
        Assert.Equal(DeviceMigrationState.Running, d.State);
        DeviceStreams.Load(d, chunks); // usable again after Reset
    }

    [Fact]
    public void Duplicate_chunk_is_detected()
    {
        var (options, chunks) = SavedStream();
        var d = new SimulatedVfioDevice(options);
        d.StartResuming();
        d.WriteChunk(0, chunks[0]);
        d.WriteChunk(1, chunks[1]);
        var e = Assert.Throws<DeviceStateException>(() => d.WriteChunk(1, chunks[1]));
        Assert.Contains("chunk 1 written after chunk 1; expected 2", e.Message);
    }

    [Fact]
    public void Short_load_missing_the_last_chunk_is_detected_at_FinishResuming()
    {
        var (options, chunks) = SavedStream();
        var d = new SimulatedVfioDevice(options);
        d.StartResuming();
        for (int i = 0; i < chunks.Count - 1; i++)
            d.WriteChunk(i, chunks[i]);
        var e = Assert.Throws<DeviceStateException>(d.FinishResuming);
        Assert.Contains("short load", e.Message);
        Assert.Equal(DeviceMigrationState.Error, d.State);
    }

    [Fact]
    public void Stream_missing_whole_records_is_a_short_load_naming_the_missing_regions()
    {
        var options = Options(8 * 4096, 0);
        var chunks = DeviceStreams.Save(new SimulatedVfioDevice(options), 16 + 4096); // one record per chunk
        var d = new SimulatedVfioDevice(options);
        d.StartResuming();
        for (int i = 0; i < 6; i++)
            d.WriteChunk(i, chunks[i]);
        var e = Assert.Throws<DeviceStateException>(d.FinishResuming);
        Assert.Contains("2 of 8 regions never loaded (first: region 6)", e.Message);
    }

    [Fact]
    public void Corrupted_byte_is_detected()
    {
        var (options, chunks) = SavedStream();
        chunks[3][1234] ^= 0x40;
        var d = new SimulatedVfioDevice(options);
        var e = Assert.Throws<DeviceStateException>(() => DeviceStreams.Load(d, chunks));
        Assert.Contains("chunk 3", e.Message);
        Assert.Contains("corrupted", e.Message);
    }

    [Fact]
    public void Corrupted_header_is_detected_with_the_bad_magic()
    {
        var (options, chunks) = SavedStream();
        chunks[0][0] ^= 1;
        var d = new SimulatedVfioDevice(options);
        var e = Assert.Throws<DeviceStateException>(() => DeviceStreams.Load(d, chunks));
        Assert.Contains("bad record magic 0x52474E30, expected 0x52474E31", e.Message);
    }

    [Fact]
    public void Illegal_transitions_and_wrong_state_calls_throw()
    {
        var d = new SimulatedVfioDevice(Options(10_000, 0));
        var e = Assert.Throws<DeviceStateException>(d.FinishResuming);
        Assert.Contains("FinishResuming in state Running", e.Message);
        Assert.Throws<DeviceStateException>(() => d.ReadPrecopy(new byte[10]));
        Assert.Throws<DeviceStateException>(() => d.ReadStopCopy(new byte[10]));
        Assert.Throws<DeviceStateException>(d.Resume);
        Assert.Throws<DeviceStateException>(d.AbortToRunning);
        d.StartPrecopy();
        var t = Assert.Throws<DeviceStateException>(d.StartResuming);
        Assert.Equal("device gpu0: illegal transition PreCopy -> Resuming", t.Message);
        Assert.Throws<DeviceStateException>(d.StartPrecopy);
        d.StartStopCopy();
        Assert.Throws<DeviceStateException>(d.FinishStopCopy); // data unread
        Assert.Throws<DeviceStateException>(d.StartResuming);
        d.AbortToRunning();
        Assert.Equal(DeviceMigrationState.Running, d.State);
        Assert.Equal(DeviceMigrationState.Running, d.State);
        d.StartResuming();
        Assert.Throws<DeviceStateException>(() => d.ComputeDigest());
        Assert.Throws<DeviceStateException>(d.StartStopCopy);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new SimulatedVfioDevice(Options(0, 0)));
        Assert.Throws<ArgumentException>(() => new SimulatedVfioDevice(Options(100, 101)));
        Assert.Throws<ArgumentException>(() => new SimulatedVfioDevice(Options(100, 0, region: 0)));
    }

    [Fact]
    public void Destination_can_become_the_source_of_a_further_migration()
    {
        var options = Options(30_000, 10_000);
        var a = new SimulatedVfioDevice(options);
        a.SimulateActivity(10_000);
        var b = new SimulatedVfioDevice(options);
        DeviceStreams.Load(b, DeviceStreams.Save(a, 3000));
        b.Resume();
        var c = new SimulatedVfioDevice(options);
        DeviceStreams.Load(c, DeviceStreams.Save(b, 3000));
        Assert.Equal(a.ComputeDigest(), c.ComputeDigest());
    }

    [Fact]
    public void Header_round_trips_and_has_the_documented_layout()
    {
        var h = new RegionRecordHeader(5, 7, 4096);
        var bytes = new byte[16];
        h.WriteTo(bytes);
        Assert.Equal("314E4752050000000700000000100000", Convert.ToHexString(bytes));
        Assert.True(RegionRecordHeader.TryRead(bytes, out var back, out _));
        Assert.Equal(h, back);
        Assert.False(RegionRecordHeader.TryRead(bytes.AsSpan(0, 15), out _, out string error));
        Assert.Contains("needs 16 bytes", error);
    }
}

[Collection(TimingSensitive.Name)]
public sealed class SimulatedVfioLoadDelayTests
{
    [Fact]
    public void Load_delay_per_MiB_slows_loading_proportionally()
    {
        var options = new SimulatedVfioOptions
        {
            Id = "gpu1",
            StateSizeBytes = 2 << 20,
            LoadDelayPerMiB = TimeSpan.FromMilliseconds(40),
        };
        var chunks = DeviceStreams.Save(new SimulatedVfioDevice(options), 100_000);
        var destination = new SimulatedVfioDevice(options);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        DeviceStreams.Load(destination, chunks);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(70), $"load took only {sw.Elapsed}");
    }
}

[Collection(TimingSensitive.Name)]
public sealed class SimulatedVfioThroughputTests
{
    [Fact]
    public void A_256_MiB_state_saves_and_loads_with_equal_digests()
    {
        var options = SimulatedVfioDeviceTests.Options(256L << 20, 64L << 20, region: 64 * 1024);
        var source = new SimulatedVfioDevice(options);
        var destination = new SimulatedVfioDevice(options);
        var buffer = new byte[1 << 20];
        long index = 0;
        destination.StartResuming();
        source.StartPrecopy();
        int n;
        while ((n = source.ReadPrecopy(buffer)) > 0)
            destination.WriteChunk(index++, buffer.AsSpan(0, n));
        source.StartStopCopy();
        while ((n = source.ReadStopCopy(buffer)) > 0)
            destination.WriteChunk(index++, buffer.AsSpan(0, n));
        source.FinishStopCopy();
        destination.FinishResuming();
        // Speed is measured by the micro-benchmarks, not asserted here.
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
        Assert.Equal(256L << 20, destination.StateSizeBytes);
    }
}
