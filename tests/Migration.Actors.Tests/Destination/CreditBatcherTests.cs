using System.Diagnostics;
using Migration.Actors.Destination;
using Xunit;

namespace Migration.Actors.Tests.Destination;

/// <summary>When a gate's batched credit is due: by count, by bytes, by age; and a policy that never starves the source.</summary>
public sealed class CreditBatcherTests
{
    private static readonly long Now = Stopwatch.GetTimestamp();

    [Fact]
    public void CreditBatcher_is_due_after_the_policy_count_and_sums_bytes_and_load_ticks()
    {
        var b = new CreditBatcher(new CreditBatchPolicy(3, long.MaxValue, TimeSpan.FromSeconds(10)));
        Assert.False(b.Add(5, 100, 7, Now));
        Assert.False(b.Add(6, 200, 8, Now));
        Assert.True(b.Add(7, 300, 9, Now));
        Assert.Equal((5L, 3, 600L, 24L), b.Take());
        Assert.True(b.IsEmpty);
        // The next batch starts where the previous one ended.
        Assert.False(b.Add(8, 1, 0, Now));
        Assert.Equal(8, b.First);
    }

    [Fact]
    public void CreditBatcher_is_due_by_bytes_and_by_age()
    {
        var bytes = new CreditBatcher(new CreditBatchPolicy(100, 250, TimeSpan.FromSeconds(10)));
        Assert.False(bytes.Add(0, 200, 0, Now));
        Assert.True(bytes.Add(1, 50, 0, Now));

        var age = new CreditBatcher(new CreditBatchPolicy(100, long.MaxValue, TimeSpan.FromMilliseconds(5)));
        Assert.False(age.Add(0, 1, 0, Now));
        Assert.False(age.IsOld(Now + (Stopwatch.Frequency / 1000)));
        Assert.True(age.IsOld(Now + (Stopwatch.Frequency / 100)));
        Assert.True(age.Add(1, 1, 0, Now + (Stopwatch.Frequency / 100)));
    }

    [Fact]
    public void CreditBatcher_rejects_a_chunk_that_does_not_follow_the_batch()
    {
        var b = new CreditBatcher(new CreditBatchPolicy(8, long.MaxValue, TimeSpan.FromSeconds(1)));
        b.Add(3, 10, 0, Now);
        var e = Assert.Throws<InvalidOperationException>(() => b.Add(5, 10, 0, Now));
        Assert.Contains("chunk 5 loaded out of order", e.Message);
    }

    [Theory]
    [InlineData(1 << 20, 1 << 20, 1, 1L)]              // budget of one chunk: every chunk on its own
    [InlineData(2 << 20, 1 << 20, 1, 1L << 20)]        // two chunks: at most one held
    [InlineData(64 << 20, 1 << 20, 2, 16L << 20)]      // 32 MiB per device: at most half of it
    [InlineData(4 << 20, 1 << 20, 8, 1L)]              // more devices than chunks: one chunk per device, per chunk
    public void CreditBatchPolicy_never_holds_so_much_credit_that_the_source_runs_dry(long budget, int chunk, int devices, long maxBytes)
    {
        var p = CreditBatchPolicy.For(8, TimeSpan.FromMilliseconds(2), budget, chunk, devices);
        Assert.Equal(maxBytes, p.MaxBytes);
        Assert.Equal(8, p.Chunks);
    }
}
