using System.Collections.Concurrent;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

/// <summary>
/// Several populating threads share one window: each slice is claimed by exactly one thread, the window beyond the
/// writers is covered without a gap, no claim reaches beyond the bound the frontier allowed when it was made, two
/// threads really populate at once, and Dispose stops them all. Claims are observed through the populator's
/// OnClaimed hook (called before each slice is populated).
/// </summary>
public sealed class RamPopulatorClaimingTests
{
    private const long SlicePages = RamPopulator.SliceBytes / RamBlock.PageSize;
    private const long AheadPages = 4 * SlicePages;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60); // a loaded machine

    private sealed class Claims
    {
        public readonly ConcurrentQueue<(long From, long End, string Thread)> Seen = new();
        public long PublishedFrontier = -1; // the test's writer publishes here before it tells the populator
        public int BeyondBound; // claims that ended past frontier + 1 + ahead

        public void Record(long from, long end)
        {
            if (end > Volatile.Read(ref PublishedFrontier) + 1 + AheadPages)
            {
                Interlocked.Increment(ref BeyondBound);
            }

            Seen.Enqueue((from, end, Thread.CurrentThread.Name ?? "?"));
        }
    }

    [Fact]
    public async Task Four_threads_claim_each_slice_once_leave_no_gap_ahead_of_the_writer_and_respect_the_bound()
    {
        using var block = RamBlock.Create("ram0", 24 * RamPopulator.SliceBytes);
        var claims = new Claims();
        using var populator = new RamPopulator([block], [true], AheadPages * RamBlock.PageSize, threads: 4) { OnClaimed = claims.Record };

        // A writer that advances in uneven steps (some smaller than a slice, some jumping past unclaimed pages).
        long frontier = 0;
        foreach (var step in new long[] { 1, 700, 2048, 5, 4096, 9000, 300, 2048, 1, 12000, 64, 3000 })
        {
            frontier += step;
            Volatile.Write(ref claims.PublishedFrontier, frontier);
            populator.OnWritten(0, frontier);
            await Task.Delay(5);
        }

        var target = Math.Min(block.PageCount, frontier + 1 + AheadPages);
        await WaitUntil(() => Covered(claims, frontier + 1, target));

        var ranges = claims.Seen.OrderBy(c => c.From).ToArray();
        for (var i = 1; i < ranges.Length; i++)
        {
            Assert.True(ranges[i].From >= ranges[i - 1].End, $"slices [{ranges[i - 1].From}, {ranges[i - 1].End}) and [{ranges[i].From}, {ranges[i].End}) overlap");
        }

        Assert.All(ranges, r => Assert.InRange(r.End - r.From, 1, SlicePages));
        Assert.True(Covered(claims, frontier + 1, target), "a page between the writer and the window's end was never claimed");
        Assert.Equal(0, claims.BeyondBound);
        Assert.True(ranges[^1].End <= target);
        await WaitUntil(() => populator.PopulatedBytes == ranges.Sum(r => r.End - r.From) * RamBlock.PageSize);
        Assert.Equal(ranges.Sum(r => r.End - r.From) * RamBlock.PageSize, populator.PopulatedBytes);
    }

    [Fact]
    public async Task A_second_thread_takes_the_next_slice_while_the_first_is_still_populating()
    {
        using var block = RamBlock.Create("ram0", 8 * RamPopulator.SliceBytes);
        using var release = new ManualResetEventSlim();
        var claimers = new ConcurrentDictionary<string, int>();
        var populator = new RamPopulator([block], [true], AheadPages * RamBlock.PageSize, threads: 2)
        {
            OnClaimed = (_, _) =>
            {
                var name = Thread.CurrentThread.Name ?? "?";
                // The first claimer holds its slice until a peer has claimed one too.
                if (claimers.TryAdd(name, 1) && claimers.Count == 1)
                {
                    release.Wait(Patience);
                }
                else
                {
                    release.Set();
                }
            },
        };
        try
        {
            populator.OnWritten(0, 0); // a whole window (4 slices) is due at once
            await WaitUntil(() => claimers.Count == 2);
            Assert.Equal(2, claimers.Count);
            Assert.Equal(2, populator.Threads);
        }
        finally
        {
            release.Set();
            populator.Dispose();
        }
    }

    [Fact]
    public async Task Dispose_stops_every_thread_and_nothing_is_claimed_after_it()
    {
        using var block = RamBlock.Create("ram0", 32 * RamPopulator.SliceBytes);
        var claims = new Claims();
        var populator = new RamPopulator([block], [true], AheadPages * RamBlock.PageSize, threads: 3) { OnClaimed = claims.Record };
        Volatile.Write(ref claims.PublishedFrontier, 0);
        populator.OnWritten(0, 0);
        await WaitUntil(() => populator.PopulatedBytes >= AheadPages * RamBlock.PageSize);
        Assert.Equal(3, populator.RunningThreads); // nothing left in the window, but the RAM is not all claimed: they wait

        populator.Dispose();
        Assert.Equal(0, populator.RunningThreads); // Dispose waits for them: the owner may unmap the blocks right after
        var before = claims.Seen.Count;
        populator.OnWritten(0, 10 * SlicePages); // more work would be due, but the populator is stopped
        await Task.Delay(200);
        Assert.Equal(before, claims.Seen.Count);
        populator.Dispose(); // idempotent
    }

    [Fact]
    public async Task Threads_end_by_themselves_once_every_page_is_claimed()
    {
        using var block = RamBlock.Create("ram0", 2 * RamPopulator.SliceBytes);
        using var populator = new RamPopulator([block], [true], AheadPages * RamBlock.PageSize, threads: 2);
        populator.OnWritten(0, 0);
        await WaitUntil(() => populator.RunningThreads == 0);
        Assert.Equal(0, populator.RunningThreads);
        Assert.Equal((block.PageCount - 1) * RamBlock.PageSize, populator.PopulatedBytes); // all but the written page
    }

    /// <summary>True when the claims so far cover every page of [from, end).</summary>
    private static bool Covered(Claims claims, long from, long end)
    {
        foreach (var r in claims.Seen.OrderBy(c => c.From))
        {
            if (r.End <= from)
            {
                continue;
            }

            if (r.From > from)
            {
                return false;
            }

            from = r.End;
            if (from >= end)
            {
                return true;
            }
        }

        return from >= end;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }
}
