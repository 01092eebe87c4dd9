using Migration.Actors.Source;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>The scanner hands out every dirty page once per iteration, in packets, ascending, and loses no page dirtied meanwhile.</summary>
public sealed class RamScannerTests : IDisposable
{
    // 130 pages (two full words and a partial one), 64 (exactly one word), 70 (a word and a bit).
    private readonly RamBlock[] _blocks =
    [
        RamBlock.Create("scan-a", 130L * RamBlock.PageSize),
        RamBlock.Create("scan-b", 64L * RamBlock.PageSize),
        RamBlock.Create("scan-c", 70L * RamBlock.PageSize),
    ];

    public void Dispose()
    {
        foreach (var b in _blocks)
        {
            b.Dispose();
        }
    }

    private static List<RamJob> Drain(RamScanner scanner)
    {
        var jobs = new List<RamJob>();
        while (scanner.TryNext(out var job))
        {
            jobs.Add(job);
        }

        return jobs;
    }

    private static (int Block, long Page)[] PagesOf(IEnumerable<RamJob> jobs) =>
        jobs.SelectMany(j => j.Pages.Take(j.Count).Select(p => (j.BlockIndex, p))).ToArray();

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(512)]
    public void RamScanner_must_hand_out_every_page_exactly_once_in_ascending_packets(int pagesPerPacket)
    {
        var scanner = new RamScanner(_blocks, pagesPerPacket);
        scanner.MarkAllDirty();
        Assert.Equal(264, scanner.BeginIteration(1));
        Assert.Equal(264, scanner.RemainingPages);

        var jobs = Drain(scanner);
        try
        {
            Assert.All(jobs, j =>
            {
                Assert.InRange(j.Count, 1, pagesPerPacket);
                Assert.Equal(1u, j.Iteration);
                Assert.Same(_blocks[j.BlockIndex], j.Block);
            });
            var expected = _blocks.SelectMany((b, i) => Enumerable.Range(0, b.PageCount).Select(p => (i, (long)p))).ToArray();
            Assert.Equal(expected, PagesOf(jobs)); // every page once, block by block, ascending
            // Only a block's last packet may be short.
            foreach (var perBlock in jobs.GroupBy(j => j.BlockIndex))
            {
                Assert.All(perBlock.SkipLast(1), j => Assert.Equal(pagesPerPacket, j.Count));
            }

            Assert.True(scanner.Exhausted);
            Assert.Equal(0, scanner.RemainingPages);
            Assert.False(scanner.TryNext(out _));
            Assert.Equal(0, scanner.CountLiveDirtyPages());
        }
        finally
        {
            jobs.ForEach(j => j.ReturnPages());
        }
    }

    [Fact]
    public void RamScanner_must_send_a_page_dirtied_during_an_iteration_in_the_next_one()
    {
        var scanner = new RamScanner(_blocks, pagesPerPacket: 16);
        scanner.MarkAllDirty();
        scanner.BeginIteration(1);
        var first = new List<RamJob>();
        for (var i = 0; i < 3 && scanner.TryNext(out var job); i++)
        {
            first.Add(job);
        }

        // Page 5 of block 0 was already handed out; page 100 of block 0 and page 3 of block 2 are still to come.
        _blocks[0].MarkDirty(5);
        _blocks[0].MarkDirty(100);
        _blocks[2].MarkDirty(3);
        Assert.Throws<InvalidOperationException>(() => scanner.BeginIteration(2));
        first.AddRange(Drain(scanner));
        Assert.Equal(264, PagesOf(first).Length);
        first.ForEach(j => j.ReturnPages());

        Assert.Equal(3, scanner.BeginIteration(2));
        var second = Drain(scanner);
        Assert.Equal([(0, 5L), (0, 100L), (2, 3L)], PagesOf(second));
        Assert.All(second, j => Assert.Equal(2u, j.Iteration));
        second.ForEach(j => j.ReturnPages());

        Assert.Equal(0, scanner.BeginIteration(3));
        Assert.False(scanner.TryNext(out _));
    }
}
