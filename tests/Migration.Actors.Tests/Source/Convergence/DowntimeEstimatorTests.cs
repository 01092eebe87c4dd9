using Migration.Actors.Source.Convergence;
using Xunit;

namespace Migration.Actors.Tests.Source.Convergence;

/// <summary>The downtime estimate: every term between stop and resume, each from its measurement or a stated fallback.</summary>
public sealed class DowntimeEstimatorTests
{
    private const long MiB = 1 << 20;

    private static DowntimeInputs Inputs(long dirty = 0, long device = 0, double precopy = 1000, double stopCopy = 0, double load = 0,
        long ram = 0, double digest = 0, double rtt = 0) => new(dirty, device, precopy, stopCopy, load, ram, digest, rtt);

    [Fact]
    public void Estimate_must_use_the_precopy_rate_times_the_factor_until_a_stop_copy_rate_was_measured()
    {
        var estimator = new DowntimeEstimator(0.5);
        // 100 MiB at 1000 B/ms * 0.5 = 500 B/ms.
        var e = estimator.Estimate(Inputs(dirty: 100 * MiB, precopy: 1000));
        Assert.Equal(100 * MiB / 500.0, e.TransferMs, 6);
        Assert.Equal(100 * MiB, e.RemainingBytes);

        var measured = estimator.Estimate(Inputs(dirty: 100 * MiB, precopy: 1000, stopCopy: 2000));
        Assert.Equal(100 * MiB / 2000.0, measured.TransferMs, 6);
    }

    [Fact]
    public void Estimate_must_add_the_load_that_outlasts_the_transfer_both_digests_and_two_round_trips()
    {
        var estimator = new DowntimeEstimator(1.0);
        // Transfer: 10 MiB RAM + 10 MiB device at 1 MiB/ms = 20 ms. Load: 10 MiB at 0.25 MiB/ms = 40 ms, of which the
        // 20 ms of the transfer overlap (chunks load as they arrive): 20 ms are left after the last byte arrived.
        // Digest: 1 GiB at 10 MiB/ms = 102.4 ms on the destination, and the source's 102.4 ms outlasts the 20 ms transfer
        // by 82.4 ms. Round trips: 2 x 3 ms.
        var e = estimator.Estimate(Inputs(dirty: 10 * MiB, device: 10 * MiB, precopy: MiB, load: MiB / 4.0, ram: 1024 * MiB, digest: 10 * MiB, rtt: 3));
        Assert.Equal(20, e.TransferMs, 6);
        Assert.Equal(20, e.DeviceLoadMs, 6);
        Assert.Equal(102.4 + 82.4, e.DigestMs, 6);
        Assert.Equal(6, e.RoundTripsMs, 6);
        Assert.Equal(20 + 20 + 184.8 + 6, e.TotalMs, 6);
        Assert.Contains("transfer 20", e.ToString());
    }

    [Fact]
    public void Estimate_must_count_at_least_the_last_chunks_load_when_loading_keeps_up_with_the_transfer()
    {
        var estimator = new DowntimeEstimator(1.0);
        // 40 MiB at 1 MiB/ms = 40 ms of transfer; loading it at 2 MiB/ms takes 20 ms, all while it arrives, except the
        // last 1 MiB chunk, which is loaded after it arrived: 0.5 ms.
        var e = estimator.Estimate(Inputs(device: 40 * MiB, precopy: MiB, load: 2 * MiB) with { ChunkBytes = MiB });
        Assert.Equal(40, e.TransferMs, 6);
        Assert.Equal(0.5, e.DeviceLoadMs, 6);
    }

    [Fact]
    public void Estimate_must_take_the_longest_sequential_device_read_when_it_outlasts_the_wire()
    {
        var estimator = new DowntimeEstimator(1.0);
        // Wire: 40 MiB at 4 MiB/ms = 10 ms. gpu0 reads its 32 unread MiB at 1 MiB/ms = 32 ms (gpu1: 8 MiB at 1 MiB/ms,
        // in parallel); gpu0's 2 MiB read ahead are read already.
        DeviceLeft[] devices = [new(32 * MiB, 2 * MiB, MiB), new(6 * MiB, 0, MiB)];
        var e = estimator.Estimate(Inputs(device: 40 * MiB, precopy: 4 * MiB, load: 100 * MiB) with { Devices = devices });
        Assert.Equal(32, e.TransferMs, 6);

        // An unmeasured read rate adds no read term: the wire rate stands for it.
        DeviceLeft[] unmeasured = [new(32 * MiB, 2 * MiB, 0), new(6 * MiB, 0, 0)];
        Assert.Equal(10, estimator.Estimate(Inputs(device: 40 * MiB, precopy: 4 * MiB) with { Devices = unmeasured }).TransferMs, 6);
    }

    [Fact]
    public void Estimate_must_load_devices_in_parallel_up_to_the_loader_threads()
    {
        var estimator = new DowntimeEstimator(1.0);
        // Transfer: 30 MiB at 1 MiB/ms = 30 ms. Load: three devices of 10 MiB at 0.5 MiB/ms = 20 ms each. On 3 threads they
        // load side by side (20 ms); on 1 thread one after the other (60 ms). 30 ms of transfer overlap either way.
        DeviceLeft[] devices = [new(10 * MiB, 0, 0), new(10 * MiB, 0, 0), new(10 * MiB, 0, 0)];
        var inputs = Inputs(device: 30 * MiB, precopy: MiB, load: MiB / 2.0) with { Devices = devices };
        Assert.Equal(30, estimator.Estimate(inputs with { LoaderThreads = 1 }).DeviceLoadMs, 6);
        Assert.Equal(2, estimator.Estimate(inputs with { LoaderThreads = 3 }).DeviceLoadMs, 6); // the last chunk: 1 MiB at 0.5 MiB/ms
    }

    [Fact]
    public void Estimate_must_hash_only_the_digest_bytes_when_they_are_known()
    {
        var estimator = new DowntimeEstimator(1.0);
        // 1 GiB guest, but only 128 MiB of segments were written since their last hash: 128 MiB at 16 MiB/ms = 8 ms per
        // side; the transfer (1 MiB at 1 MiB/ms = 1 ms) hides 1 ms of the source's.
        var e = estimator.Estimate(Inputs(dirty: MiB, precopy: MiB, ram: 1024 * MiB, digest: 16 * MiB) with { DigestBytes = 128 * MiB });
        Assert.Equal(8 + 7, e.DigestMs, 6);
        // Unknown (-1): the whole guest.
        Assert.Equal(64 + 63, estimator.Estimate(Inputs(dirty: MiB, precopy: MiB, ram: 1024 * MiB, digest: 16 * MiB)).DigestMs, 6);
    }

    [Fact]
    public void Estimate_must_not_count_the_source_digest_that_overlaps_a_longer_transfer()
    {
        var estimator = new DowntimeEstimator(1.0);
        // Transfer 200 ms, digest 100 ms per side: only the destination's digest follows the transfer.
        var e = estimator.Estimate(Inputs(dirty: 200 * MiB, precopy: MiB, ram: 100 * MiB, digest: MiB));
        Assert.Equal(200, e.TransferMs, 6);
        Assert.Equal(100, e.DigestMs, 6);
    }

    [Fact]
    public void Estimate_must_fall_back_to_the_stop_copy_rate_for_unmeasured_load_and_digest_rates_never_to_zero()
    {
        var estimator = new DowntimeEstimator(0.5);
        var e = estimator.Estimate(Inputs(device: 50 * MiB, precopy: 2 * MiB, ram: 100 * MiB));
        // Rate 1 MiB/ms: 50 ms transfer; the load at the same rate keeps up with it, so only the last chunk's 1 ms is
        // left; digest 100 ms (destination) + 50 ms (source past the transfer).
        Assert.Equal(50, e.TransferMs, 6);
        Assert.Equal(1, e.DeviceLoadMs, 6);
        Assert.Equal(150, e.DigestMs, 6);

        // No rate measured at all (before the first byte): large, finite, positive.
        var blind = estimator.Estimate(Inputs(dirty: MiB, precopy: 0));
        Assert.True(double.IsFinite(blind.TotalMs) && blind.TotalMs > 1000);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    public void DowntimeEstimator_must_reject_a_factor_outside_0_to_1(double factor) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DowntimeEstimator(factor));
}
