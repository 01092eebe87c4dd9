using System.Diagnostics;
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
/// Budget and credit: the gate returns each loaded chunk's bytes to the budget before crediting them to the source,
/// so a source that respects its credit never makes a reservation fail and the budget is never exceeded.
/// </summary>
public sealed class ReorderGateCreditSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    /// <summary>
    /// Plays a source that respects its credit (the real DeviceCreditPool with the destination's budget) and sends
    /// each device's chunks in index order, while the "channels" deliver the chunks in flight in random order.
    /// The device is slow, so the sender keeps running out of credit and has to wait for DeviceCredit.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 7, false)]
    [InlineData(3, 1, 7, false)]
    [InlineData(1, 2, 8, false)]
    [InlineData(4, 2, 8, false)]
    [InlineData(1, 1, 7, true)]
    [InlineData(6, 1, 9, true)]
    [InlineData(8, 2, 8, true)]
    public void ReorderGate_never_holds_more_than_its_budget(int budgetChunks, int deviceCount, int seed, bool batched)
    {
        var states = new[]
        {
            SavedDeviceState.Save(SavedDeviceState.Vfio("slow-a", 24 * 2048, 2048, seed: 40), chunks: 12),
            SavedDeviceState.Save(SavedDeviceState.Vfio("slow-b", 16 * 2048, 2048, seed: 41, instance: 1), chunks: 8),
        }.Take(deviceCount).ToArray();
        var chunkSize = states.Max(s => s.MaxChunkLength);
        var budgetBytes = (long)chunkSize * budgetChunks;
        var budget = new DeviceBufferBudget(budgetBytes);
        var sourceCredit = new DeviceCreditPool(budgetBytes, chunkSize, deviceCount);
        var pool = NewPool();
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var devices = states.Select(s => s.NewDestination(writeDelay: TimeSpan.FromMilliseconds(2))).ToArray();
        // Batched: the migration's policy for this budget (credits for ranges of chunks, by count, bytes or age).
        var batching = batched ? CreditBatchPolicy.For(4, TimeSpan.FromMilliseconds(2), budgetBytes, chunkSize, deviceCount) : null;
        var gates = devices.Select((d, i) => Sys.ActorOf(ReorderGate.Props(i, MigrationId, d, pool, budget, owner, credit, batching))).ToArray();

        var rng = new Random(seed);
        var next = new int[deviceCount];
        var window = new List<(int Device, int Index)>();
        var arrivals = states.Select(_ => new List<int>()).ToArray();
        var total = states.Sum(s => s.TotalBytes);
        long credited = 0;
        var waits = 0;

        void OnCredit(DeviceCredit c)
        {
            Assert.Equal(MigrationId, c.MigrationId);
            sourceCredit.Return(c.DeviceIndex, c.Bytes);
            credited += c.Bytes;
            // Released before credited: what the destination holds never exceeds what the source counts in flight.
            Assert.True(budget.HeldBytes <= sourceCredit.InFlightBytes,
                $"after a credit of {c.Bytes}: destination holds {budget.HeldBytes} bytes, source has only {sourceCredit.InFlightBytes} in flight");
        }

        while (credited < total)
        {
            // The coordinator: reserve credit and read the next chunk of each device, in index order.
            for (var progress = true; progress;)
            {
                progress = false;
                for (var d = 0; d < deviceCount; d++)
                {
                    if (next[d] < states[d].Count && sourceCredit.CanReserveChunk(d))
                    {
                        sourceCredit.ReserveChunk(d);
                        sourceCredit.Shrink(d, states[d].Chunks[next[d]].Length);
                        window.Add((d, next[d]++));
                        progress = true;
                    }
                }
            }

            Assert.True(sourceCredit.InFlightBytes <= budgetBytes);
            if (window.Count > 0)
            {
                // The channels: any chunk in flight may arrive next.
                var pick = rng.Next(window.Count);
                var (d, i) = window[pick];
                window.RemoveAt(pick);
                arrivals[d].Add(i);
                states[d].Deliver(gates[d], budget, d, i, channel: rng.Next(3));
                while (credit.HasMessages)
                {
                    OnCredit(credit.ExpectMsg<DeviceCredit>());
                }

                continue;
            }

            waits++;
            OnCredit(credit.ExpectMsg<DeviceCredit>(Patience));
        }

        var loaded = owner.ReceiveN(deviceCount, Patience).Select(m => Assert.IsType<DeviceLoaded>(m)).OrderBy(l => l.DeviceIndex).ToArray();
        for (var d = 0; d < deviceCount; d++)
        {
            Assert.Equal(states[d].Digest, loaded[d].Digest);
            Assert.Equal(Enumerable.Range(0, states[d].Count).Select(i => (long)i), devices[d].Attempted);
            Assert.Equal(SavedDeviceState.ExpectedOutOfOrder(arrivals[d], states[d].Count), loaded[d].Stats.OutOfOrderChunks);
            Assert.InRange(loaded[d].Stats.PeakBufferedBytes, states[d].Chunks.Min(c => c.Length), budgetBytes);
        }

        Assert.InRange(budget.PeakBytes, chunkSize / 2, budgetBytes);
        Assert.Equal(0, budget.HeldBytes);
        Assert.Equal(0, sourceCredit.InFlightBytes);
        Assert.Equal(total, credited);
        // The budget really throttled the sender, and with room for several chunks the arrival order really was shuffled.
        Assert.True(waits >= states.Sum(s => s.Count) / (budgetChunks + 1), $"sender waited for credit only {waits} times");
        if (budgetChunks > 1)
        {
            Assert.True(loaded.Sum(l => l.Stats.OutOfOrderChunks) > 0, "no chunk arrived out of order");
        }

        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void ReorderGate_must_credit_each_loaded_chunk_once_with_its_length_no_faster_than_the_loader_writes()
    {
        var delay = TimeSpan.FromMilliseconds(10);
        var state = SavedDeviceState.Save(SavedDeviceState.Vfio("slow-credit", 6 * 4096, 4096, seed: 5), chunks: 6);
        var pool = NewPool();
        var budget = new DeviceBufferBudget(1 << 20);
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var device = state.NewDestination(writeDelay: delay);
        var gate = Sys.ActorOf(ReorderGate.Props(4, MigrationId, device, pool, budget, owner, credit));

        // Chunk 0 arrives last: every other chunk is held when loading starts, so the buffered figures are exact.
        foreach (var i in new[] { 5, 3, 1, 4, 2 })
        {
            state.Deliver(gate, budget, 4, i);
        }

        var clock = Stopwatch.StartNew();
        state.Deliver(gate, budget, 4, 0);
        var remaining = state.TotalBytes;
        for (var k = 0; k < 6; k++)
        {
            var c = credit.ExpectMsg<DeviceCredit>(Patience);
            var at = clock.Elapsed;
            // The loader wrote chunk k before its credit left: never more credits than completed writes.
            Assert.True(device.CompletedWrites >= k + 1, $"credit {k + 1} arrived after only {device.CompletedWrites} completed writes");
            Assert.True(at >= (k + 1) * delay * 0.9, $"credit {k + 1} arrived after {at.TotalMilliseconds:F1} ms; {k + 1} writes take >= {(k + 1) * delay.TotalMilliseconds} ms");
            remaining -= state.Chunks[k].Length;
            Assert.Equal(new DeviceCredit(MigrationId, 4, state.Chunks[k].Length, k, c.LoadTicks, remaining), c);
            Assert.True(c.LoadTicks >= delay.TotalSeconds * 0.9 * Stopwatch.Frequency, $"chunk {k} load ticks {c.LoadTicks} shorter than the device's delay");
        }

        var loaded = owner.ExpectMsg<DeviceLoaded>(Patience);
        Assert.Equal(state.Digest, loaded.Digest);
        Assert.Equal(state.TotalBytes, loaded.Stats.Bytes);
        Assert.Equal(state.TotalBytes, loaded.Stats.PeakBufferedBytes);
        Assert.True(loaded.Stats.LoadMs >= 6 * delay.TotalMilliseconds * 0.9, $"load time {loaded.Stats.LoadMs} ms");
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(0, budget.HeldBytes);
    }
}
