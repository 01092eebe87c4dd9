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
    public void Estimate_must_add_device_load_both_digests_and_two_round_trips()
    {
        var estimator = new DowntimeEstimator(1.0);
        // Transfer: 10 MiB RAM + 10 MiB device at 1 MiB/ms = 20 ms. Load: 10 MiB at 0.5 MiB/ms = 20 ms.
        // Digest: 1 GiB at 10 MiB/ms = 102.4 ms on the destination, and the source's 102.4 ms outlasts the 20 ms transfer
        // by 82.4 ms. Round trips: 2 x 3 ms.
        var e = estimator.Estimate(Inputs(dirty: 10 * MiB, device: 10 * MiB, precopy: MiB, load: MiB / 2.0, ram: 1024 * MiB, digest: 10 * MiB, rtt: 3));
        Assert.Equal(20, e.TransferMs, 6);
        Assert.Equal(20, e.DeviceLoadMs, 6);
        Assert.Equal(102.4 + 82.4, e.DigestMs, 6);
        Assert.Equal(6, e.RoundTripsMs, 6);
        Assert.Equal(20 + 20 + 184.8 + 6, e.TotalMs, 6);
        Assert.Contains("transfer 20", e.ToString());
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
        // Rate 1 MiB/ms: 50 ms transfer, 50 ms load, digest 100 ms (destination) + 50 ms (source past the transfer).
        Assert.Equal(50, e.TransferMs, 6);
        Assert.Equal(50, e.DeviceLoadMs, 6);
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
