using System.Runtime.InteropServices;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

public sealed class RamBlockTests
{
    [Fact]
    public void Create_maps_zeroed_pages_and_dispose_is_idempotent()
    {
        var block = RamBlock.Create("ram0", 1 << 20);
        Assert.Equal(256, block.PageCount);
        Assert.Equal(1 << 20, block.SizeBytes);
        Assert.False(block.Pages(0, 256).ContainsAnyExcept((byte)0));
        block.Dispose();
        block.Dispose();
        Assert.Throws<ObjectDisposedException>(() => block.Page(0));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-4096)]
    [InlineData(4095)]
    [InlineData(4096 * 3 + 1)]
    public void Create_rejects_sizes_that_are_not_positive_multiples_of_4096(long size)
    {
        var e = Assert.Throws<ArgumentException>(() => RamBlock.Create("ram0", size));
        Assert.Contains("multiple of 4096", e.Message);
    }

    [Fact]
    public void Temporary_backing_file_leaves_nothing_behind_and_a_named_one_is_kept()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ramtest-{Guid.NewGuid():N}.bin");
        try
        {
            using (var block = RamBlock.Create("ram1", 8192, new RamBlockOptions { BackingFile = path }))
                block.Write(1, 0, [42]);
            Assert.True(File.Exists(path));
            using var again = RamBlock.Create("ram1", 8192, new RamBlockOptions { BackingFile = path });
            Assert.Equal(42, again.Page(1)[0]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Out_of_range_pages_are_refused_with_the_block_name_and_size()
    {
        using var block = RamBlock.Create("ram0", 512 * 4096);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => block.Page(9001));
        Assert.Contains("page 9001 beyond block 'ram0' of 512 pages", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => block.Pages(510, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => block.Write(0, 4000, new byte[100]));
        Assert.Throws<ArgumentOutOfRangeException>(() => block.MarkDirty(-1));
    }

    [Fact]
    public void Write_copies_and_marks_the_page_dirty()
    {
        using var block = RamBlock.Create("ram0", 16 * 4096);
        block.Write(5, 10, [1, 2, 3]);
        Assert.Equal([1, 2, 3], block.Page(5).Slice(10, 3).ToArray());
        Assert.True(block.Dirty.IsDirty(5));
        Assert.False(block.Dirty.IsDirty(4));
        Assert.Equal(1, block.Dirty.CountDirty());
    }

    [Fact]
    public void PagesMemory_aliases_the_mapped_pages_without_copy()
    {
        using var block = RamBlock.Create("ram0", 16 * 4096);
        Memory<byte> memory = block.PagesMemory(2, 3);
        Assert.Equal(3 * 4096, memory.Length);
        memory.Span[4096] = 77;
        Assert.Equal(77, block.Page(3)[0]);
        Assert.True(MemoryMarshal.TryGetMemoryManager<byte, System.Buffers.MemoryManager<byte>>(memory, out _));
        using var pin = memory.Pin();
        unsafe { Assert.True(pin.Pointer == block.BasePointer + 2 * 4096); }
    }

    [Fact]
    public void PagesMemory_aliases_the_right_pages_in_every_GiB_of_a_large_block_without_allocating_per_call()
    {
        // 1 GiB + 128 MiB, untouched (anonymous memory costs nothing until written): runs in the first GiB, across the
        // GiB boundary, in the second GiB, and one longer than a segment's overlap.
        const long gib = 1L << 30;
        using var block = RamBlock.Create("big", gib + (128L << 20));
        var gibPage = gib / 4096;
        (long First, int Count)[] runs = [(2, 3), (gibPage - 1, 3), (gibPage + 5, 2), (gibPage - 100, 20_000)];
        foreach (var (first, count) in runs)
        {
            var memory = block.PagesMemory(first, count);
            Assert.Equal(count * 4096, memory.Length);
            using var pin = memory.Pin();
            unsafe { Assert.True(pin.Pointer == block.BasePointer + (first * 4096), $"run at page {first}"); }
            memory.Span[^1] = 9;
            Assert.Equal(9, block.Page(first + count - 1)[4095]);
        }

        // Once a segment's view exists, a run in it is a slice: nothing is allocated per call.
        block.PagesMemory(gibPage + 7, 1);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            block.PagesMemory(gibPage + 7 + (i % 100), 1 + (i % 8));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Digest_is_equal_for_equal_content_and_differs_after_a_one_byte_change()
    {
        using var a = RamBlock.Create("a", 300 * 4096);
        using var b = RamBlock.Create("b", 300 * 4096);
        new Random(1).NextBytes(a.Pages(0, 300));
        a.Pages(0, 300).CopyTo(b.Pages(0, 300));
        Assert.Equal(a.ComputeDigest(), b.ComputeDigest());
        b.Page(299)[4095] ^= 1;
        Assert.NotEqual(a.ComputeDigest(), b.ComputeDigest());
    }

    [Fact]
    public void Prefault_touches_every_page_without_changing_content()
    {
        using var block = RamBlock.Create("ram0", 20000L * 4096, new RamBlockOptions { Prefault = true });
        block.Write(19999, 0, [9]);
        UInt128 before = block.ComputeDigest();
        block.Prefault();
        Assert.Equal(before, block.ComputeDigest());
        Assert.Equal(9, block.Page(19999)[0]);
    }
}
