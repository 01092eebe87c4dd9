using Akka.Actor;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Source;
using Migration.Actors.Tests.Support;
using Migration.Transport.Flow;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Destination;

/// <summary>
/// Batched credits end to end between real gates and the source's real bookkeeping: chunks of two devices arrive
/// shuffled across devices and channels; the gates return credit as ranges of consecutive chunks, and the source's
/// SentChunkLedger and DeviceCreditPool accept every batch and end with nothing in flight, in fewer messages than chunks.
/// </summary>
public sealed class ReorderGateBatchedCreditSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    [Fact]
    public void ReorderGates_must_credit_ranges_that_the_source_ledger_accepts_exactly_under_reordering_across_devices()
    {
        var states = new[]
        {
            SavedDeviceState.Save(SavedDeviceState.Vfio("batch-a", 32 * 2048, 2048, seed: 60), chunks: 32),
            SavedDeviceState.Save(SavedDeviceState.Vfio("batch-b", 24 * 2048, 2048, seed: 61, instance: 1), chunks: 24),
        };
        var chunkSize = states.Max(s => s.MaxChunkLength);
        var budgetBytes = (long)chunkSize * 64;
        var budget = new DeviceBufferBudget(budgetBytes);
        var policy = CreditBatchPolicy.For(8, TimeSpan.FromMilliseconds(2), budgetBytes, chunkSize, states.Length);
        var pool = NewPool();
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var gates = states.Select((s, d) => Sys.ActorOf(ReorderGate.Props(d, MigrationId, s.NewDestination(), pool, budget, owner, credit, policy))).ToArray();

        // The source: every chunk recorded as sent (on a pseudo channel), its credit reserved and shrunk.
        var ledger = new SentChunkLedger(states.Length);
        var pool2 = new DeviceCreditPool(budgetBytes, chunkSize, states.Length);
        var arrivals = new List<(int Device, int Index)>();
        for (var d = 0; d < states.Length; d++)
        {
            for (var i = 0; i < states[d].Count; i++)
            {
                var bytes = states[d].Chunks[i];
                pool2.ReserveChunk(d);
                pool2.Shrink(d, bytes.Length);
                ledger.Sent(new SavedChunk(d, i, false, i == states[d].Count - 1, System.Buffers.ArrayPool<byte>.Shared.Rent(bytes.Length), bytes.Length), channel: i % 4);
                arrivals.Add((d, i));
            }
        }

        var rng = new Random(62);
        foreach (var (d, i) in arrivals.OrderBy(_ => rng.Next()))
        {
            states[d].Deliver(gates[d], budget, d, i, channel: i % 4);
        }

        var total = states.Sum(s => s.TotalBytes);
        var next = new long[states.Length];
        var messages = 0;
        for (long credited = 0; credited < total;)
        {
            var c = credit.ExpectMsg<DeviceCredit>(Patience);
            messages++;
            Assert.InRange(c.Chunks, 1, policy.Chunks);
            // Per device the ranges follow each other: no gap, no overlap.
            Assert.Equal(next[c.DeviceIndex], c.ChunkIndex);
            next[c.DeviceIndex] += c.Chunks;
            ledger.Credited(c.DeviceIndex, c.ChunkIndex, c.Chunks, c.Bytes);
            pool2.Return(c.DeviceIndex, c.Bytes);
            credited += c.Bytes;
        }

        Assert.Equal([32L, 24L], next);
        Assert.Equal(0, ledger.Count);
        Assert.Equal(0, pool2.InFlightBytes);
        Assert.True(messages < 56, $"{messages} credit messages for 56 chunks: nothing was batched");
        Assert.All(owner.ReceiveN(2, Patience), m => Assert.IsType<DeviceLoaded>(m));
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(50));
        Assert.Equal(0, budget.HeldBytes);
    }

    [Fact]
    public void ReorderGate_must_return_a_partial_batch_when_no_further_chunk_is_loaded()
    {
        // Batches of 8, but only 3 of 10 chunks arrive: their credit must not wait for chunks that never come.
        var state = SavedDeviceState.Save(SavedDeviceState.Vfio("batch-idle", 10 * 2048, 2048, seed: 63), chunks: 10);
        var budget = new DeviceBufferBudget(1 << 20);
        var policy = new CreditBatchPolicy(8, 1 << 20, TimeSpan.FromMilliseconds(2));
        var credit = CreateTestProbe();
        var gate = Sys.ActorOf(ReorderGate.Props(0, MigrationId, state.NewDestination(), NewPool(), budget, CreateTestProbe(), credit, policy));
        foreach (var i in new[] { 2, 0, 1 })
        {
            state.Deliver(gate, budget, 0, i);
        }

        long chunks = 0;
        long bytes = 0;
        while (chunks < 3)
        {
            var c = credit.ExpectMsg<DeviceCredit>(Patience);
            Assert.Equal(chunks, c.ChunkIndex);
            chunks += c.Chunks;
            bytes += c.Bytes;
        }

        Assert.Equal(3, chunks);
        Assert.Equal(state.Chunks.Take(3).Sum(c => (long)c.Length), bytes);
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(50));
    }
}
