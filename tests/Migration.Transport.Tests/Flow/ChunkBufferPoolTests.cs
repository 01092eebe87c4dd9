using Migration.Transport.Flow;
using Xunit;

namespace Migration.Transport.Tests.Flow;

/// <summary>
/// The chunk pool keeps idle buffers of the size last prepared only, so what a node holds between migrations does not
/// grow with every chunk size its peers pick (the pool it replaced kept a set per size, for good).
/// </summary>
public sealed class ChunkBufferPoolTests
{
    private const int Mib = 1 << 20;

    [Fact]
    public void A_prepared_size_is_lent_without_allocating_and_shorter_chunks_share_its_bucket()
    {
        var pool = new ChunkBufferPool(maxIdle: 64);
        pool.Prepare(16, 768 * 1024); // not a power of two: the bucket is 1 MiB
        Assert.Equal(Mib, pool.BucketBytes);
        Assert.Equal(16L * Mib, pool.IdleBytes);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var rented = Enumerable.Range(0, 16).Select(i => pool.Rent(768 * 1024 - i * 4096)).ToArray(); // all in the 1 MiB bucket
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < 4096, $"renting a prepared set allocated {allocated} bytes"); // the LINQ above, no buffer
        Assert.All(rented, b => Assert.Equal(Mib, b.Length));
        Assert.Equal(16, rented.Distinct().Count());
        Assert.Equal(0, pool.IdleBytes);
        foreach (var b in rented)
        {
            pool.Return(b);
        }

        Assert.Equal(16L * Mib, pool.IdleBytes);
    }

    [Fact]
    public void Preparing_another_size_drops_the_idle_buffers_of_the_old_one()
    {
        var pool = new ChunkBufferPool(maxIdle: 64);
        pool.Prepare(32, Mib);
        var outAtOnce = pool.Rent(Mib); // a migration of the old size still holds one

        pool.Prepare(8, 64 * 1024);
        Assert.Equal(64 * 1024, pool.BucketBytes);
        Assert.Equal(8L * 64 * 1024, pool.IdleBytes); // none of the 31 idle 1 MiB buffers is kept

        pool.Return(outAtOnce); // of the old size: dropped, not kept beside the new set
        Assert.Equal(8L * 64 * 1024, pool.IdleBytes);
        var bigger = pool.Rent(Mib); // a request above the current bucket: allocated to its own bucket, not pooled on return
        Assert.Equal(Mib, bigger.Length);
        pool.Return(bigger);
        Assert.Equal(8L * 64 * 1024, pool.IdleBytes);
        var smaller = pool.Rent(4096); // a request of a smaller bucket gets its own size, not a buffer of the current bucket
        Assert.Equal(4096, smaller.Length);
        Assert.Equal(8L * 64 * 1024, pool.IdleBytes);
    }

    [Fact]
    public void Short_chunks_are_pooled_in_their_own_bucket_a_few_at_a_time()
    {
        var pool = new ChunkBufferPool(maxIdle: 64);
        pool.Prepare(4, Mib);
        var shorts = Enumerable.Range(0, 12).Select(_ => pool.Rent(300 * 1024)).ToArray(); // a device's last chunks: 512 KiB bucket
        Assert.All(shorts, b => Assert.Equal(512 * 1024, b.Length));
        foreach (var b in shorts)
        {
            pool.Return(b);
        }

        Assert.Equal((4L * Mib) + (ChunkBufferPool.ShorterIdlePerBucket * 512L * 1024), pool.IdleBytes); // 8 kept, 4 dropped
        var again = pool.Rent(300 * 1024);
        Assert.Contains(shorts, b => ReferenceEquals(b, again)); // one of the pooled ones, not a new one
        pool.Prepare(4, 64 * 1024); // another chunk size: the short stashes go too
        Assert.Equal(4L * 64 * 1024, pool.IdleBytes);
    }

    [Fact]
    public void It_never_keeps_more_than_its_bound_and_an_empty_request_gets_an_empty_array()
    {
        var pool = new ChunkBufferPool(maxIdle: 4);
        pool.Prepare(100, 4096);
        Assert.Equal(4L * 4096, pool.IdleBytes);
        var extra = Enumerable.Range(0, 10).Select(_ => pool.Rent(4096)).ToArray();
        foreach (var b in extra)
        {
            pool.Return(b);
        }

        Assert.Equal(4L * 4096, pool.IdleBytes);
        Assert.Empty(pool.Rent(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChunkBufferPool(0));
    }

    [Fact]
    public void Concurrent_renters_and_returners_never_get_the_same_buffer()
    {
        var pool = new ChunkBufferPool(maxIdle: 64);
        pool.Prepare(64, 64 * 1024);
        var owners = new System.Collections.Concurrent.ConcurrentDictionary<byte[], int>(ReferenceEqualityComparer.Instance);
        Parallel.For(0, 4, worker =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                var b = pool.Rent(60 * 1024);
                Assert.True(owners.TryAdd(b, worker), "a buffer was lent twice");
                Assert.True(owners.TryRemove(b, out _));
                pool.Return(b);
            }
        });
        Assert.True(pool.IdleBytes <= 64L * 64 * 1024);
    }
}
