using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

/// <summary>The node memory pool (Linux anonymous memory, as on every node of this project).</summary>
public sealed class GuestMemoryPoolTests
{
    private const long Block = 4L << 20;

    [Fact]
    public void A_returned_block_is_handed_out_again_as_recycled_memory_holding_its_former_bytes()
    {
        using var pool = new GuestMemoryPool(64L << 20, TimeSpan.Zero);
        var first = RamBlock.Create("a", Block);
        first.Page(3).Fill(0xAB);
        pool.Return(first);
        Assert.Equal(Block, pool.State().ReadyBytes);

        using var second = pool.TryTake("b", Block);
        Assert.NotNull(second);
        Assert.True(second.Recycled);
        // The pool does not scrub: that is the new owner's job (IncomingRamTracker), which is why Recycled exists.
        Assert.Equal(0xAB, second.Page(3)[0]);
        Assert.Equal(0, pool.State().HeldBytes);
        Assert.Equal(Block, pool.State().ReusedBytes);
    }

    [Fact]
    public void Returned_memory_stays_in_quarantine_before_it_is_handed_out()
    {
        using var pool = new GuestMemoryPool(64L << 20, TimeSpan.FromMinutes(5));
        pool.Return(RamBlock.Create("a", Block));
        Assert.Equal(Block, pool.State().HeldBytes);
        Assert.Equal(0, pool.State().ReadyBytes);
        Assert.Null(pool.TryTake("b", Block));
    }

    [Fact]
    public void The_pool_never_holds_more_than_its_bound_and_trims_on_request()
    {
        using var pool = new GuestMemoryPool(2 * Block, TimeSpan.Zero);
        var blocks = Enumerable.Range(0, 3).Select(i => RamBlock.Create($"b{i}", Block)).ToArray();
        foreach (var b in blocks)
        {
            pool.Return(b);
        }

        Assert.Equal(2 * Block, pool.State().HeldBytes);
        // The third did not fit: it was disposed, not kept.
        Assert.Throws<ObjectDisposedException>(() => blocks[2].Page(0));
        Assert.Equal(Block, pool.Trim(Block));
        Assert.Equal(Block, pool.State().HeldBytes);
    }

    [Fact]
    public void A_smaller_block_is_carved_from_a_larger_range_and_a_larger_one_is_refused()
    {
        using var pool = new GuestMemoryPool(64L << 20, TimeSpan.Zero);
        Assert.Equal(Block, pool.Populate(Block));
        Assert.Null(pool.TryTake("big", 2 * Block));
        using var a = pool.TryTake("a", Block / 2);
        using var b = pool.TryTake("b", Block / 2);
        Assert.NotNull(a);
        Assert.NotNull(b);
        Assert.Equal(0, pool.State().HeldBytes);
        a.Page(0)[0] = 1; // both halves are usable, distinct memory
        Assert.Equal(0, b.Page(0)[0]);
    }

    [Fact]
    public void Populated_memory_is_zeroed_and_ready_at_once_within_the_bound()
    {
        using var pool = new GuestMemoryPool(3 * Block, TimeSpan.FromMinutes(5));
        Assert.Equal(3 * Block, pool.Populate(10 * Block, rangeBytes: Block));
        Assert.Equal(3 * Block, pool.State().ReadyBytes);
        Assert.Equal(3 * Block, pool.State().PopulatedBytes);
        using var block = pool.TryTake("p", Block)!;
        Assert.True(block.Pages(0, block.PageCount).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void A_range_the_kernel_refuses_to_map_gives_its_reservation_back()
    {
        // 256 TiB: beyond the 128 TiB a process can map on x86-64, so mmap refuses it (ENOMEM) before touching anything.
        const long huge = 1L << 48;
        using var pool = new GuestMemoryPool(huge, TimeSpan.Zero);
        Assert.Throws<OutOfMemoryException>(() => pool.Populate(huge, rangeBytes: huge));
        Assert.Equal(0, pool.State().HeldBytes);
        // The whole bound is still there: a later populate gets what it asks for.
        Assert.Equal(Block, pool.Populate(Block));
        Assert.Equal(Block, pool.State().HeldBytes);
    }
}
