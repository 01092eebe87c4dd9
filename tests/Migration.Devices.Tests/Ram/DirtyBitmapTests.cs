using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

public sealed class DirtyBitmapTests
{
    [Fact]
    public void FetchAndClear_returns_marked_pages_and_clears_them()
    {
        var bitmap = new DirtyBitmap(130);
        bitmap.Mark(0);
        bitmap.Mark(64);
        bitmap.Mark(129);
        ulong[] snap = bitmap.CreateSnapshotBuffer();
        Assert.Equal(3, bitmap.FetchAndClear(snap));
        Assert.Equal(0, bitmap.CountDirty());
        Assert.Equal(1UL, snap[0]);
        Assert.Equal(1UL, snap[1]);
        Assert.Equal(2UL, snap[2]);
        Assert.Equal(0, bitmap.FetchAndClear(snap));
    }

    [Fact]
    public void MarkAll_sets_only_valid_pages()
    {
        var bitmap = new DirtyBitmap(130);
        bitmap.MarkAll();
        Assert.Equal(130, bitmap.CountDirty());
        ulong[] snap = bitmap.CreateSnapshotBuffer();
        bitmap.FetchAndClear(snap);
        Assert.Equal(0b11UL, snap[2]);
    }

    [Fact]
    public void FetchAndClear_rejects_a_short_buffer_and_Mark_an_out_of_range_page()
    {
        var bitmap = new DirtyBitmap(130);
        var e = Assert.Throws<ArgumentException>(() => bitmap.FetchAndClear(new ulong[2]));
        Assert.Contains("2 words", e.Message);
        var r = Assert.Throws<ArgumentOutOfRangeException>(() => bitmap.Mark(130));
        Assert.Contains("page 130 beyond bitmap of 130 pages", r.Message);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 128)]
    [InlineData(50, 3)]
    [InlineData(1234, 128)]
    public void CollectPages_yields_exactly_the_set_bits_in_order(int seed, int batch)
    {
        var rng = new Random(seed);
        foreach (double density in new[] { 0.0, 0.01, 0.3, 1.0 })
        {
            int pages = rng.Next(1, 5000);
            var snapshot = new ulong[(pages + 63) / 64];
            var expected = new List<long>();
            for (int p = 0; p < pages; p++)
            {
                if (rng.NextDouble() < density)
                {
                    snapshot[p >> 6] |= 1UL << (p & 63);
                    expected.Add(p);
                }
            }
            var actual = new List<long>();
            var output = new long[batch];
            long cursor = 0;
            int n;
            while ((n = DirtyBitmap.CollectPages(snapshot, ref cursor, output)) > 0)
            {
                Assert.True(n <= batch);
                actual.AddRange(output.AsSpan(0, n).ToArray());
            }
            Assert.Equal(expected, actual);
            Assert.Equal(expected.Count, DirtyBitmap.CountPages(snapshot));
        }
    }

    [Fact]
    public void CollectPages_starts_at_the_cursor_inside_a_word()
    {
        ulong[] snapshot = [0b1011UL, 1UL << 63];
        long cursor = 1;
        var output = new long[8];
        int n = DirtyBitmap.CollectPages(snapshot, ref cursor, output);
        Assert.Equal([1L, 3L, 127L], output[..n]);
        Assert.Equal(0, DirtyBitmap.CollectPages(snapshot, ref cursor, output));
    }
}
