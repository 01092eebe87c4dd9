using System.Buffers.Binary;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Devices.Tests.Ram;

[Collection(TimingSensitive.Name)]
public sealed class DirtyTrackingContentionTests
{
    /// <summary>
    /// Writers store an increasing sequence number in their pages (write-then-mark) while a "sender" repeatedly
    /// fetches the bitmap and copies the dirty pages. After the writers stop and one final fetch, the copy
    /// must hold every page's last written value: a write after a sync always appears in the next sync.
    /// </summary>
    [Fact]
    public async Task No_dirty_page_is_lost_under_concurrent_writes_and_fetches()
    {
        const int pages = 4096;
        const int writers = 3;
        using var block = RamBlock.Create("ram0", pages * 4096L);
        var copy = new byte[pages * 4096];
        using var stop = new CancellationTokenSource();

        var writerTasks = Enumerable.Range(0, writers).Select(w => Task.Factory.StartNew(() =>
        {
            var rng = new Random(w);
            ulong seq = 0;
            var value = new byte[8];
            while (!stop.IsCancellationRequested)
            {
                // Each writer owns the pages p with p % writers == w, so values are never torn between writers.
                long page = rng.Next(pages / writers) * writers + w;
                BinaryPrimitives.WriteUInt64LittleEndian(value, ++seq);
                block.Write(page, 8, value);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        ulong[] snap = block.Dirty.CreateSnapshotBuffer();
        var batch = new long[128];
        long syncs = 0;
        void Sync()
        {
            block.Dirty.FetchAndClear(snap);
            long cursor = 0;
            int n;
            while ((n = DirtyBitmap.CollectPages(snap, ref cursor, batch)) > 0)
                foreach (long page in batch.AsSpan(0, n))
                    block.Page(page).CopyTo(copy.AsSpan((int)(page * 4096), 4096));
            syncs++;
        }
        // Sync while the writers run: at least 20 syncs and 700 ms, however loaded the machine is.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (syncs < 20 || clock.ElapsedMilliseconds < 700)
            Sync();
        stop.Cancel();
        while (!writerTasks.All(t => t.IsCompleted))
            Sync();
        await Task.WhenAll(writerTasks);
        Sync();

        Assert.True(syncs > 20);
        for (int p = 0; p < pages; p++)
            Assert.True(block.Page(p).SequenceEqual(copy.AsSpan(p * 4096, 4096)), $"page {p} lost its last write");
    }
}
