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
