using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Xunit;

namespace Migration.Devices.Tests.Workload;

[Collection(TimingSensitive.Name)]
public sealed class GuestWorkloadTests
{
    [Fact]
    public void Workload_never_dirties_faster_than_the_configured_rate_and_keeps_the_pattern()
    {
        using var a = RamBlock.Create("ram0", 1000 * 4096);
        using var b = RamBlock.Create("ram1", 500 * 4096);
        const long rate = 20_000L * 4096; // 20k pages/s
        using var workload = new GuestWorkload([a, b], rate);
        workload.Start();
        Assert.True(workload.IsRunning);
        Thread.Sleep(500);
        workload.Pause();
        long pages = workload.PagesDirtied;
        // Pacing is an upper bound (10k pages in 0.5 s, with slack for the sleep overshooting); a loaded machine may
        // dirty fewer, which is not an error.
        Assert.InRange(pages, 1, 12_000);
        Assert.True(a.Dirty.CountDirty() + b.Dirty.CountDirty() > 0);
        var result = WorkloadPatternChecker.Check([a, b]);
        Assert.True(result.Ok, result.Message);
        Assert.Equal(1500, result.PagesChecked);
    }

    [Fact]
    public void Pause_is_synchronous_and_no_write_happens_until_Resume()
    {
        using var block = RamBlock.Create("ram0", 256 * 4096);
        using var workload = new GuestWorkload([block], long.MaxValue / 2); // flat out
        workload.Start();
        Thread.Sleep(50);
        workload.Pause();
        Assert.False(workload.IsRunning);
        long count = workload.PagesDirtied;
        UInt128 digest = block.ComputeDigest();
        Thread.Sleep(100);
        Assert.Equal(digest, block.ComputeDigest());
        Assert.Equal(count, workload.PagesDirtied);
        Assert.True(WorkloadPatternChecker.Check([block]).Ok);

        workload.Resume();
        Thread.Sleep(50);
        workload.Pause();
        Assert.True(workload.PagesDirtied > count);
        Assert.True(WorkloadPatternChecker.Check([block]).Ok);
    }

    [Fact]
    public void Resume_says_how_long_the_guest_was_paused_since_the_first_Pause_and_zero_when_it_was_not()
    {
        using var block = RamBlock.Create("ram0", 64 * 4096);
        using var workload = new GuestWorkload([block], 1 << 20);
        workload.Start();
        Assert.Equal(TimeSpan.Zero, workload.Resume()); // running: nothing to report

        var sw = System.Diagnostics.Stopwatch.StartNew();
        workload.Pause();
        Thread.Sleep(60);
        workload.Pause(); // a second Pause does not restart the clock
        Thread.Sleep(60);
        var pausedFor = workload.Resume();
        Assert.InRange(pausedFor, TimeSpan.FromMilliseconds(110), sw.Elapsed);
        Assert.Equal(TimeSpan.Zero, workload.Resume());
    }

    [Fact]
    public void A_throttled_workload_dirties_proportionally_less_flat_out_and_paced_and_keeps_the_pattern()
    {
        using var block = RamBlock.Create("ram0", 4096 * 4096);
        using var workload = new GuestWorkload([block], long.MaxValue / 2); // flat out
        workload.Start();
        long Run(int ms)
        {
            var before = workload.PagesDirtied;
            workload.Resume();
            Thread.Sleep(ms);
            workload.Pause();
            return workload.PagesDirtied - before;
        }

        workload.Pause();
        var free = Run(300);
        workload.SetThrottle(75);
        Assert.Equal(75, workload.ThrottlePercent);
        var throttled = Run(300);
        Console.WriteLine($"flat out: {free} pages unthrottled, {throttled} at 75 %");
        // Ideally a quarter; a loaded machine blurs it, but the throttle's sleeps leave the core to others either way.
        Assert.True(throttled < free * 0.6, $"throttled 75 %: {throttled} pages vs {free} unthrottled");
        workload.SetThrottle(0);
        Assert.True(WorkloadPatternChecker.Check([block]).Ok);

        // Paced at 20k pages/s, throttled 50 %: at most 10k pages/s (3k in 0.3 s, with slack for the sleep overshooting).
        workload.SetRate(20_000L * 4096);
        workload.SetThrottle(50);
        Assert.InRange(Run(300), 1, 4_000);
        Assert.Throws<ArgumentOutOfRangeException>(() => workload.SetThrottle(100));
        Assert.Throws<ArgumentOutOfRangeException>(() => workload.SetThrottle(-1));
        Assert.True(WorkloadPatternChecker.Check([block]).Ok);
    }

    [Fact]
    public void Idle_workload_writes_nothing_and_Dispose_stops_the_thread()
    {
        using var block = RamBlock.Create("ram0", 64 * 4096);
        var workload = new GuestWorkload([block], 0);
        workload.Start();
        Thread.Sleep(50);
        Assert.Equal(0, workload.PagesDirtied);
        workload.SetRate(1_000_000_000);
        Thread.Sleep(50);
        workload.Dispose();
        workload.Dispose();
        long after = workload.PagesDirtied;
        Assert.True(after > 0);
        Thread.Sleep(30);
        Assert.Equal(after, workload.PagesDirtied);
        Assert.False(workload.IsRunning);
    }
}
