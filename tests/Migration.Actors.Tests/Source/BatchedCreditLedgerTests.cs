using Migration.Actors.Messages;
using Migration.Actors.Source;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// The source's ledger under batched credits (one DeviceCredit names a range of chunks): exact accounting, credits of
/// different devices in any order, every cheat rejected without changing anything, and the resend after a lost channel
/// still exact when the destination holds chunks whose credit is still batched.
/// </summary>
public sealed class BatchedCreditLedgerTests
{
    private static SavedChunk Chunk(int device, long index, int length) => new(device, index, false, false, System.Buffers.ArrayPool<byte>.Shared.Rent(length), length);

    private static SentChunkLedger Ledger(int devices, int chunks, int length = 100)
    {
        var ledger = new SentChunkLedger(devices);
        for (var d = 0; d < devices; d++)
        {
            for (var i = 0; i < chunks; i++)
            {
                ledger.Sent(Chunk(d, i, length + i), channel: i % 2);
            }
        }

        return ledger;
    }

    [Fact]
    public void Ledger_must_accept_ranges_of_different_devices_in_any_order()
    {
        var ledger = Ledger(devices: 2, chunks: 10);
        ledger.Credited(1, 0, 4, 100 + 101 + 102 + 103);
        ledger.Credited(0, 0, 2, 201);
        ledger.Credited(1, 4, 6, Enumerable.Range(4, 6).Sum(i => 100L + i));
        ledger.Credited(0, 2, 8, Enumerable.Range(2, 8).Sum(i => 100L + i));
        Assert.Equal(0, ledger.Count);
    }

    [Fact]
    public void Ledger_must_reject_a_duplicate_an_over_credit_and_a_range_beyond_what_was_sent_and_stay_unchanged()
    {
        var ledger = Ledger(devices: 1, chunks: 6);
        ledger.Credited(0, 0, 3, 303);

        // The same batch again, or one overlapping it: chunk 2 is not in flight any more.
        Assert.Contains("names chunk 2, which is not in flight", Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 2, 2, 205)).Message);
        // More bytes than the chunks have (over-credit), and fewer.
        Assert.Contains("credit of 999 bytes for chunks 3..4 of 207 bytes", Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 3, 2, 999)).Message);
        Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 3, 2, 206));
        // A range running past the last chunk sent.
        Assert.Contains("names chunk 6", Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 4, 3, 315)).Message);
        // Empty and negative ranges.
        Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, 3, 0, 0));
        Assert.Throws<InvalidOperationException>(() => ledger.Credited(0, -1, 1, 100));

        // All or nothing: every rejected batch left chunks 3..5 in flight, and they are credited exactly once.
        Assert.Equal(3, ledger.Count);
        Assert.Equal(103 + 104 + 105, ledger.Bytes);
        ledger.Credited(0, 3, 3, 312);
        Assert.Equal(0, ledger.Count);
    }

    [Fact]
    public void Ledger_must_resend_exactly_the_lost_chunks_while_loaded_chunks_wait_for_their_batched_credit()
    {
        // Channel 0 carried the even chunks 0..8, channel 1 the odd ones. The destination loaded 0..4 (credit for 0..1
        // arrived, 2..4 is still in a batch), holds 7 out of order, and lost the rest of channel 0's.
        var ledger = Ledger(devices: 1, chunks: 10);
        ledger.Credited(0, 0, 2, 201);
        var lost = ledger.TakeLost(0, [new DeviceReceipt(5, [7])]);
        Assert.Equal([6L, 8L], lost.Select(c => c.Index));

        // The batch for 2..4 arrives after the loss and is still exact; the resent chunks are credited later.
        ledger.Credited(0, 2, 3, 102 + 103 + 104);
        foreach (var c in lost)
        {
            ledger.Sent(c, channel: 1);
        }

        ledger.Credited(0, 5, 5, Enumerable.Range(5, 5).Sum(i => 100L + i));
        Assert.Equal(0, ledger.Count);
    }
}
