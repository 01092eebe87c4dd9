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
}
