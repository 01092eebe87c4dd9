using System.Buffers;
using Migration.Actors.Messages;
using Migration.Actors.Source;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// What the source keeps to survive a lost channel: which pages each channel carried per unconfirmed iteration
/// (<see cref="RamSendLog"/>), and every device chunk sent and not yet credited (<see cref="SentChunkLedger"/>).
/// </summary>
public sealed class ResendBookkeepingTests : IDisposable
{
    private readonly RamBlock[] _blocks = [RamBlock.Create("log-a", 130L * RamBlock.PageSize), RamBlock.Create("log-b", 64L * RamBlock.PageSize)];

    public void Dispose()
    {
        foreach (var b in _blocks)
        {
            b.Dispose();
        }
    }

    private static RamJob Job(int block, RamBlock ram, uint iteration, params long[] pages)
    {
        var rented = ArrayPool<long>.Shared.Rent(pages.Length);
        pages.CopyTo(rented, 0);
        return new RamJob(block, ram, rented, pages.Length, iteration);
    }

    private long[] Dirty(int block) =>
        Enumerable.Range(0, (int)_blocks[block].PageCount).Where(p => _blocks[block].Dirty.IsDirty(p)).Select(p => (long)p).ToArray();

    [Fact]
    public void Redirty_marks_exactly_the_pages_a_channel_carried_after_its_last_delivered_Sync()
    {
        var log = new RamSendLog(_blocks);
        log.Record(0, Job(0, _blocks[0], 1, 0, 1, 129));
        log.Record(1, Job(0, _blocks[0], 1, 2, 3));
        log.Record(0, Job(1, _blocks[1], 2, 63));
        log.Record(0, Job(0, _blocks[0], 3, 64, 65));

        // Channel 0 delivered Sync(1): its pages of iterations 2 and 3 may be lost, not those of 1, not channel 1's.
        Assert.Equal(3, log.Redirty(0, delivered: 1));
        Assert.Equal([64L, 65L], Dirty(0));
        Assert.Equal([63L], Dirty(1));

        // Forgotten once marked: a second loss of the same channel marks nothing more of them.
        Assert.Equal(0, log.Redirty(0, delivered: 1));
        // Channel 1 delivered nothing: all it carried.
        Assert.Equal(2, log.Redirty(1, delivered: 0));
        Assert.Equal([2L, 3L, 64L, 65L], Dirty(0));
    }

    [Fact]
    public void Confirmed_iterations_are_forgotten_and_their_bitmaps_reused()
    {
        var log = new RamSendLog(_blocks);
        log.Record(0, Job(0, _blocks[0], 1, 5));
        log.Record(1, Job(0, _blocks[0], 1, 6));
        log.Record(1, Job(0, _blocks[0], 2, 7));
        Assert.Equal(3, log.HeldBitmaps);

        log.Confirm(1);
        Assert.Equal(1, log.HeldBitmaps);
        Assert.Equal(0, log.Redirty(0, delivered: 0));
        Assert.Equal(1, log.Redirty(1, delivered: 0));
        Assert.Equal([7L], Dirty(0));

        // A reused bitmap starts clear: only the new page is marked.
        _blocks[0].Dirty.FetchAndClear(new ulong[_blocks[0].Dirty.WordCount]);
        log.Record(0, Job(0, _blocks[0], 3, 8));
        Assert.Equal(1, log.Redirty(0, delivered: 2));
        Assert.Equal([8L], Dirty(0));

        // Pages of a confirmed iteration can no longer be handed out: that would be a coordinator bug.
        Assert.Throws<InvalidOperationException>(() => log.Record(0, Job(0, _blocks[0], 1, 9)));
    }

    private static SavedChunk Chunk(int device, long index, int length) =>
        new(device, index, StopCopy: false, Last: false, ArrayPool<byte>.Shared.Rent(Math.Max(1, length)), length);

    [Fact]
    public void Ledger_gives_back_only_the_lost_chunks_the_destination_does_not_hold()
    {
        var ledger = new SentChunkLedger(devices: 2);
        ledger.Sent(Chunk(0, 0, 100), channel: 1);
        ledger.Sent(Chunk(0, 1, 100), channel: 0);
        ledger.Sent(Chunk(0, 2, 100), channel: 1);
        ledger.Sent(Chunk(0, 3, 100), channel: 1);
        ledger.Sent(Chunk(1, 0, 50), channel: 1);
        Assert.Equal(5, ledger.Count);
        Assert.Equal(450, ledger.Bytes);

        // Device 0: the gate released chunk 0 to its loader and holds 3; device 1: nothing arrived.
        var lost = ledger.TakeLost(1, [new DeviceReceipt(1, [3L]), new DeviceReceipt(0, [])]);
        Assert.Equal([(0, 2L), (1, 0L)], lost.Select(c => (c.DeviceIndex, c.Index)));
        Assert.Equal(3, ledger.Count);

        // Chunks still in the ledger are settled by their credits, exactly once and with their length.
        ledger.Credited(0, 0, 100);
        Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 1, 99));
        Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 2, 100)); // lost: not in flight until resent
        ledger.Sent(lost[0], channel: 0);
        ledger.Credited(0, 2, 100);
        Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 2, 100));
    }
}
