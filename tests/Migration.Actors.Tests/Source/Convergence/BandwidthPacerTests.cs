using Migration.Actors.Source.Convergence;
using Xunit;

namespace Migration.Actors.Tests.Source.Convergence;

/// <summary>The precopy bandwidth limit's token bucket, on a fake clock.</summary>
public sealed class BandwidthPacerTests
{
    private const long MiB = 1 << 20;

    [Fact]
    public void Pacer_must_hold_the_average_rate_whatever_the_job_size()
    {
        var now = 0.0;
        var pacer = new BandwidthPacer(100 * MiB, () => now);
        long sent = 0;
        // 10 s in 1 ms steps, sending 512 KiB jobs whenever allowed (a job may take the bucket below zero).
        for (; now < 10_000; now += 1)
        {
            while (pacer.CanSend())
            {
                pacer.Spend(512 * 1024);
                sent += 512 * 1024;
            }
        }

        var rate = sent / 10.0;
        Assert.InRange(rate, 100 * MiB * 0.98, 100 * MiB * 1.02);
    }

    [Fact]
    public void Pacer_must_keep_bursts_after_an_idle_spell_to_its_burst_window()
    {
        var now = 0.0;
        var pacer = new BandwidthPacer(100 * MiB, () => now);
        now = 60_000; // a minute idle
        long burst = 0;
        while (pacer.CanSend())
        {
            pacer.Spend(64 * 1024);
            burst += 64 * 1024;
        }

        // At most the bucket (BurstMs worth: 5 MiB) plus one job.
        Assert.InRange(burst, 1, (long)(100 * MiB * BandwidthPacer.BurstMs / 1000) + (64 * 1024));
    }

    [Fact]
    public void Pacer_must_say_how_long_until_the_debt_is_repaid_and_take_refunds()
    {
        var now = 0.0;
        var pacer = new BandwidthPacer(1000 * 1000, () => now); // 1000 B/ms
        pacer.Spend(50_000 + 50_000); // the full 50 000 B bucket (50 ms) and 50 ms of debt
        Assert.False(pacer.CanSend());
        Assert.InRange(pacer.Wait().TotalMilliseconds, 50, 51);

        // The job was all zero pages: the wire carried 40 000 bytes less; 10 ms of debt is left.
        pacer.Refund(40_000);
        Assert.InRange(pacer.Wait().TotalMilliseconds, 10, 11);
        now = 11;
        Assert.True(pacer.CanSend());
        Assert.Equal(TimeSpan.Zero, pacer.Wait());
    }

    [Fact]
    public void Pacer_must_let_everything_through_when_unlimited_or_disabled_and_apply_a_new_rate()
    {
        var now = 0.0;
        var pacer = new BandwidthPacer(0, () => now);
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(pacer.CanSend());
            pacer.Spend(MiB);
        }

        pacer.SetRate(MiB);
        pacer.Spend(10 * MiB);
        Assert.False(pacer.CanSend());
        pacer.Enabled = false; // stop-copy: full speed
        Assert.True(pacer.CanSend());
        Assert.Equal(TimeSpan.Zero, pacer.Wait());
        Assert.Throws<ArgumentOutOfRangeException>(() => pacer.SetRate(-1));
    }
}
