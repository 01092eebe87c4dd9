using Migration.Actors.Source;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// No allocation per packet on the source: RAM jobs come from the scanner's pool and are reused once their packet was
/// sent (the pool grows only to the jobs alive at once), and the downtime estimate loads devices in parallel.
/// </summary>
public sealed class PooledJobTests : IDisposable
{
    private readonly RamBlock _block = RamBlock.Create("pooled", 64L * RamBlock.PageSize);

    public void Dispose() => _block.Dispose();

    [Fact]
    public void RamScanner_reuses_returned_jobs_and_grows_its_pool_only_to_the_jobs_alive_at_once()
    {
        var scanner = new RamScanner([_block], pagesPerPacket: 4);
        scanner.MarkAllDirty();
        scanner.BeginIteration(1);
        var seen = new List<long>();
        var alive = new Queue<RamJob>();
        while (scanner.TryNext(out var job))
        {
            Assert.Equal(1u, job.Iteration);
            Assert.Same(_block, job.Block);
            seen.AddRange(job.Pages.Take(job.Count));
            alive.Enqueue(job);
            // Two channels with a queue depth of 1 each: at most two jobs are out at once.
            if (alive.Count == 2)
            {
                alive.Dequeue().ReturnPages();
            }
        }

        Assert.Equal(Enumerable.Range(0, 64).Select(p => (long)p), seen);
        Assert.InRange(scanner.Jobs.Created, 2, 3);
    }

    [Fact]
    public void DowntimeEstimate_counts_the_longest_device_load_not_the_sum_when_devices_load_in_parallel()
    {
        // 100 bytes/ms on the wire, 10 bytes/ms per loader; two devices of 1000 and 500 bytes, RAM 0.
        var (remaining, parallel) = DowntimeEstimate.Compute(0, [1000, 500], 100, 10, parallelLoads: 2);
        Assert.Equal(1500, remaining);
        Assert.Equal(15 + 100, parallel, 3);
        // One core: the loads queue behind each other (the total over one loader).
        Assert.Equal(15 + 150, DowntimeEstimate.Compute(0, [1000, 500], 100, 10, parallelLoads: 1).DowntimeMs, 3);
        // No load measured yet: loading counts as fast as the transfer.
        Assert.Equal(15 + 10, DowntimeEstimate.Compute(0, [1000, 500], 100, 0, parallelLoads: 2).DowntimeMs, 3);
        // No devices: the dirty RAM alone.
        Assert.Equal(20, DowntimeEstimate.Compute(2000, [], 100, 10, parallelLoads: 2).DowntimeMs, 3);
    }
}
