using Akka.Actor;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Tests.Support;
using Migration.Transport.Flow;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Destination;

/// <summary>The gate releases each device's chunks to its loader strictly in index order, whatever the arrival order.</summary>
public sealed class ReorderGateOrderSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    [Fact]
    public void ReorderGate_must_release_chunks_in_index_order_for_every_permutation()
    {
        // 6 regions of 4 KiB: the record stream (headers + payload) is cut into exactly 6 chunks.
        var state = SavedDeviceState.Save(SavedDeviceState.Vfio("nic-perm", 6 * 4096, 4096, seed: 11), chunks: 6);
        var permutations = Permutations(6).ToArray();
        Assert.Equal(720, permutations.Length);

        var pool = NewPool(threads: 2, capacity: 1024);
        var budget = new DeviceBufferBudget(state.TotalBytes * permutations.Length);
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var devices = new RecordingDevice[permutations.Length];

        // One gate per permutation, all running at once; the permutation number is the gate's device index.
        for (var p = 0; p < permutations.Length; p++)
        {
            devices[p] = state.NewDestination();
            var gate = Sys.ActorOf(ReorderGate.Props(p, MigrationId, devices[p], pool, budget, owner, credit));
            foreach (var index in permutations[p])
            {
                state.Deliver(gate, budget, p, index, channel: index % 3);
            }
        }

        var loaded = new DeviceLoaded?[permutations.Length];
        foreach (var message in owner.ReceiveN(permutations.Length, TimeSpan.FromSeconds(30)))
        {
            var l = Assert.IsType<DeviceLoaded>(message);
            Assert.Null(loaded[l.DeviceIndex]);
            loaded[l.DeviceIndex] = l;
        }

        for (var p = 0; p < permutations.Length; p++)
        {
            var order = string.Join(",", permutations[p]);
            Assert.True(devices[p].Attempted.SequenceEqual([0L, 1, 2, 3, 4, 5]),
                $"arrival order {order}: device saw writes {string.Join(",", devices[p].Attempted)}");
            Assert.Equal(1, devices[p].MaxConcurrentWrites);
            var l = loaded[p]!;
            Assert.Equal(state.Digest, l.Digest);
            Assert.Equal("nic-perm", l.Stats.Id);
            Assert.Equal(6, l.Stats.Chunks);
            Assert.Equal(state.TotalBytes, l.Stats.Bytes);
            Assert.True(SavedDeviceState.ExpectedOutOfOrder(permutations[p], 6) == l.Stats.OutOfOrderChunks,
                $"arrival order {order}: expected {SavedDeviceState.ExpectedOutOfOrder(permutations[p], 6)} out-of-order chunks, gate counted {l.Stats.OutOfOrderChunks}");

            // Nothing can be loaded before chunk 0 arrives: everything up to and including it was buffered at once.
            var heldBeforeZero = permutations[p].TakeWhile(i => i != 0).Sum(i => (long)state.Chunks[i].Length) + state.Chunks[0].Length;
            Assert.InRange(l.Stats.PeakBufferedBytes, heldBeforeZero, state.TotalBytes);
        }

        // The permutation 0..5 is the only one without a reordered chunk; 5..0 reorders five of them.
        Assert.Equal(0, loaded[0]!.Stats.OutOfOrderChunks);
        Assert.Equal(5, loaded[^1]!.Stats.OutOfOrderChunks);

        var credits = credit.ReceiveN(permutations.Length * 6, TimeSpan.FromSeconds(30)).Select(m => Assert.IsType<DeviceCredit>(m)).ToArray();
        foreach (var perDevice in credits.GroupBy(c => c.DeviceIndex))
        {
            Assert.Equal(6, perDevice.Count());
            Assert.Equal(state.TotalBytes, perDevice.Sum(c => c.Bytes));
        }

        Assert.Equal(permutations.Length, credits.Select(c => c.DeviceIndex).Distinct().Count());
        Assert.Equal(0, budget.HeldBytes);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void ReorderGate_must_load_two_devices_whose_chunks_arrive_interleaved(int seed)
    {
        var a = SavedDeviceState.Save(SavedDeviceState.Vfio("gpu-a", 40 * 1024, 4096, seed: 100 + seed), chunks: 9);
        var b = SavedDeviceState.Save(SavedDeviceState.Vfio("nvme-b", 20 * 1024, 8192, seed: 200 + seed, instance: 1), chunks: 5);
        var states = new[] { a, b };
        var pool = NewPool();
        var budget = new DeviceBufferBudget(a.TotalBytes + b.TotalBytes);
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var devices = states.Select(s => s.NewDestination()).ToArray();
        var gates = devices.Select((d, i) => Sys.ActorOf(ReorderGate.Props(i, MigrationId, d, pool, budget, owner, credit))).ToArray();

        var rng = new Random(seed);
        var arrivals = states.SelectMany((s, d) => Enumerable.Range(0, s.Count).Select(i => (Device: d, Index: i))).ToArray();
        rng.Shuffle(arrivals);
        foreach (var (d, i) in arrivals)
        {
            states[d].Deliver(gates[d], budget, d, i, channel: rng.Next(4));
        }

        var loaded = owner.ReceiveN(2, Patience).Select(m => Assert.IsType<DeviceLoaded>(m)).OrderBy(l => l.DeviceIndex).ToArray();
        Assert.Equal([0, 1], loaded.Select(l => l.DeviceIndex));
        var credits = credit.ReceiveN(a.Count + b.Count, Patience).Select(m => Assert.IsType<DeviceCredit>(m)).ToArray();
        for (var d = 0; d < 2; d++)
        {
            var s = states[d];
            Assert.Equal(Enumerable.Range(0, s.Count).Select(i => (long)i), devices[d].Attempted);
            Assert.Equal(s.Digest, loaded[d].Digest);
            Assert.Equal(s.Options.Id, loaded[d].Stats.Id);
            Assert.Equal(SavedDeviceState.ExpectedOutOfOrder(arrivals.Where(x => x.Device == d).Select(x => x.Index), s.Count), loaded[d].Stats.OutOfOrderChunks);
            var own = credits.Where(c => c.DeviceIndex == d).ToArray();
            Assert.Equal(s.Chunks.Select(c => (long)c.Length), own.Select(c => c.Bytes));
            Assert.All(own, c => Assert.Equal(MigrationId, c.MigrationId));
        }

        Assert.NotEqual(loaded[0].Digest, loaded[1].Digest);
        Assert.Equal(0, budget.HeldBytes);
        owner.ExpectNoMsg(TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void ReorderGate_must_hold_chunks_after_a_gap_until_the_gap_is_filled()
    {
        var state = SavedDeviceState.Save(SavedDeviceState.Vfio("disk-gap", 16 * 1024, 4096, seed: 3), chunks: 4);
        var pool = NewPool();
        var budget = new DeviceBufferBudget(1 << 20);
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var device = state.NewDestination();
        var gate = Sys.ActorOf(ReorderGate.Props(2, MigrationId, device, pool, budget, owner, credit));
        long Len(int i) => state.Chunks[i].Length;

        state.Deliver(gate, budget, 2, 2, channel: 1);
        state.Deliver(gate, budget, 2, 3, channel: 0);
        gate.Tell(GetGateSnapshot.Instance);
        Assert.Equal(new GateSnapshot(2, Len(2) + Len(3), Len(2) + Len(3), OutOfOrderChunks: 2, NextIndex: 0, LoadedChunks: 0), ExpectMsg<GateSnapshot>());
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Empty(device.Attempted);
        Assert.Equal(Len(2) + Len(3), budget.HeldBytes);

        state.Deliver(gate, budget, 2, 0, channel: 1);
        Assert.Equal(Len(0), credit.ExpectMsg<DeviceCredit>(Patience).Bytes);
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        gate.Tell(GetGateSnapshot.Instance);
        Assert.Equal(new GateSnapshot(2, Len(2) + Len(3), Len(0) + Len(2) + Len(3), 2, NextIndex: 1, LoadedChunks: 1), ExpectMsg<GateSnapshot>());
        Assert.Equal([0L], device.Attempted);

        state.Deliver(gate, budget, 2, 1, channel: 2);
        var loaded = owner.ExpectMsg<DeviceLoaded>(Patience);
        Assert.Equal(state.Digest, loaded.Digest);
        Assert.Equal([Len(1), Len(2), Len(3)], credit.ReceiveN(3, Patience).Select(m => ((DeviceCredit)m).Bytes));
        Assert.Equal([0L, 1, 2, 3], device.Attempted);
        Assert.Equal(0, budget.HeldBytes);
    }

    private static IEnumerable<int[]> Permutations(int n)
    {
        // Lexicographic order: the first is 0..n-1, the last n-1..0.
        var a = Enumerable.Range(0, n).ToArray();
        while (true)
        {
            yield return (int[])a.Clone();
            var i = n - 2;
            while (i >= 0 && a[i] > a[i + 1])
            {
                i--;
            }

            if (i < 0)
            {
                yield break;
            }

            var j = n - 1;
            while (a[j] < a[i])
            {
                j--;
            }

            (a[i], a[j]) = (a[j], a[i]);
            Array.Reverse(a, i + 1, n - i - 1);
        }
    }
}
