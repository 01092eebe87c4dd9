using System.Buffers;
using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Destination;
using Migration.Actors.Infrastructure;
using Migration.Actors.Messages;
using Migration.Actors.Tests.Support;
using Migration.Devices.Device.Vfio;
using Migration.Transport.Flow;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Destination;

/// <summary>
/// Issue 9's allocation target on the destination's device path: a device chunk received in steady state (gate ->
/// loader -> simulated VFIO device -> batched credit) allocates at most <see cref="MaxBytesPerChunk"/> bytes of managed
/// memory, so 1 MiB chunks stay under 1 MiB of allocation per GiB. Measured process-wide
/// (GC.GetTotalAllocatedBytes) over a whole device load after a warm-up load of the same shape, so that a rented
/// chunk buffer the pool failed to keep (1 MiB at once), a per-record string or a per-chunk closure fails it.
/// Runs with serialize-messages off (unlike the other specs): the in-process path is measured as production runs it;
/// the credit's cross-node serialization is Akka's cost and is measured on its own below.
/// In a collection that runs alone: the figure is process-wide, and specs running in parallel would add theirs.
/// </summary>
[Collection(AllocationMeasurement.Name)]
public sealed class DevicePathAllocationSpecs(ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.actor.serialize-messages = off"), null, output)
{
    /// <summary>1 KiB per 1 MiB chunk = 1 MiB per GiB, the issue's target for the whole node.</summary>
    private const int MaxBytesPerChunk = 1024;

    private const int ChunkBytes = 1 << 20;

    private static readonly Guid MigrationId = Guid.Parse("0f9a4c1e-7d2b-4e61-a3c5-5b8e2d7f1a90");

    private readonly ITestOutputHelper _output = output;

    [Fact]
    public void Device_chunk_receive_through_gate_and_loader_does_not_allocate_per_chunk()
    {
        // 64 chunks of about 1 MiB (the default chunk size) of 64 KiB regions, shuffled within windows of 8 so the gate
        // holds chunks out of order too; the default budget of 64 MiB and the default credit batching.
        const int chunks = 64;
        var options = SavedDeviceState.Vfio("alloc", (long)(chunks - 1) * ChunkBytes, 64 * 1024, seed: 91);
        var state = SavedDeviceState.Save(options, chunks);
        using var pool = new WorkerPool("alloc-load", 2, 64);
        var budget = new DeviceBufferBudget(64L << 20);
        var policy = CreditBatchPolicy.For(8, TimeSpan.FromMilliseconds(2), budget.BudgetBytes, ChunkBytes, devices: 1);

        var perChunk = new List<double>();
        for (var run = 0; run < 4; run++)
        {
            perChunk.Add(SteadyAllocationPerChunk(state, pool, budget, policy, seed: run));
        }

        _output.WriteLine($"allocated per 1 MiB chunk in steady state: {string.Join(", ", perChunk.Select(p => $"{p:F0} B"))}");
        // Run 0 warms up (JIT, the chunk pool growing to what is out at once, mailboxes); then the best of three,
        // because anything else the process allocates meanwhile (the test host, Akka's scheduler) only adds to a run.
        var best = perChunk.Skip(1).Min();
        Assert.True(best <= MaxBytesPerChunk,
            $"device path allocated {best:F0} bytes per {ChunkBytes >> 20} MiB chunk in steady state (bound {MaxBytesPerChunk}); runs: {string.Join(", ", perChunk.Select(p => $"{p:F0}"))}");
    }

    [Fact]
    public void A_prepared_chunk_pool_lends_a_whole_budget_of_chunks_without_allocating()
    {
        const long budgetBytes = 48L << 20;
        const int chunkSize = 768 * 1024; // not a power of two: the pool's bucket is the next one up (1 MiB)
        DeviceChunkBuffers.Prepare(budgetBytes, chunkSize);
        var count = (int)(budgetBytes / chunkSize) + 1;
        var rented = new byte[count][];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < count; i++)
        {
            rented[i] = DeviceChunkBuffers.Shared.Rent(chunkSize - (i % 3) * 1024); // chunks a little shorter: same bucket
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        foreach (var b in rented)
        {
            DeviceChunkBuffers.Shared.Return(b);
        }

        Assert.True(allocated == 0, $"renting {count} chunks of a prepared budget allocated {allocated} bytes");
        Assert.Equal(count, rented.Distinct().Count());
    }

    [Fact]
    public async Task A_device_credit_costs_the_serializer_a_bounded_allocation_which_batching_divides_among_its_chunks()
    {
        // What Akka's serializer allocates for one DeviceCredit leaving the node (its own 57-byte format, as bound in
        // hocon/cluster.conf): the array and nothing else (Hyperion took about 1.9 KB per credit).
        var system = ActorSystem.Create("credit-ser", SpecConfig.Base);
        try
        {
            var credit = new DeviceCredit(MigrationId, 1, 8L << 20, 4096, 123456, 1 << 20, 8);
            var serializer = system.Serialization.FindSerializerFor(credit);
            for (var i = 0; i < 100; i++)
            {
                serializer.ToBinary(credit);
            }

            const int n = 2000;
            var before = GC.GetAllocatedBytesForCurrentThread();
            var size = 0;
            for (var i = 0; i < n; i++)
            {
                size = serializer.ToBinary(credit).Length;
            }

            var perCredit = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)n;
            _output.WriteLine($"{serializer.GetType().Name}: {perCredit:F0} B allocated per DeviceCredit ({size} B on the wire); per 1 MiB chunk with batches of 8: {perCredit / 8:F0} B");
            Assert.IsType<DeviceCreditSerializer>(serializer);
            Assert.Equal(DeviceCreditSerializer.Length, size);
            Assert.InRange(perCredit, 1, 128);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Loads the saved state into a fresh device through a gate: the first quarter of the chunks (the device's and the
    /// actors' one-time costs: scratch buffers, mailboxes), then the rest, measured: bytes the process allocated per
    /// chunk from the first measured chunk's arrival until the source had every credit back. The last chunk is not
    /// marked last, so the one-time digest at the end is not measured either (tests of the gate check the digest).
    /// </summary>
    private double SteadyAllocationPerChunk(SavedDeviceState state, WorkerPool pool, DeviceBufferBudget budget, CreditBatchPolicy policy, int seed)
    {
        var device = new SimulatedVfioDevice(state.Options);
        device.StartResuming();
        var credits = new CreditTotals();
        var creditActor = Sys.ActorOf(Props.Create(() => new CreditCounter(credits)));
        var owner = CreateTestProbe();
        var gate = Sys.ActorOf(ReorderGate.Props(0, MigrationId, device, pool, budget, owner, creditActor, policy));
        var order = ShuffledInWindows(state.Count, window: 8, new Random(seed));
        var warm = state.Count / 4;
        Deliver(state, gate, budget, order.AsSpan(0, warm));
        AwaitCondition(() => credits.Chunks == warm, TimeSpan.FromSeconds(30));
        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(true);
        Deliver(state, gate, budget, order.AsSpan(warm));
        AwaitCondition(() => credits.Chunks == state.Count, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(5));
        var allocated = GC.GetTotalAllocatedBytes(true) - before;
        _output.WriteLine($"run {seed}: {state.Count} chunks credited in {credits.Messages} DeviceCredits");
        owner.ExpectNoMsg(TimeSpan.Zero); // no DeviceLoadFailed nor GateViolation: every chunk was written in order
        Assert.Equal(state.TotalBytes, credits.Bytes);
        Assert.Equal(0, budget.HeldBytes);
        Sys.Stop(gate);
        Sys.Stop(creditActor);
        return allocated / (double)(state.Count - warm);
    }

    /// <summary>Plays the receive loop: reserve, rent from the node's chunk pool, fill, hand over (the gate, then the loader, owns the buffer).</summary>
    private static void Deliver(SavedDeviceState state, IActorRef gate, DeviceBufferBudget budget, ReadOnlySpan<int> indices)
    {
        foreach (var i in indices)
        {
            var chunk = state.Chunks[i];
            Assert.True(budget.TryReserve(chunk.Length));
            var buffer = DeviceChunkBuffers.Shared.Rent(chunk.Length);
            chunk.CopyTo(buffer, 0);
            gate.Tell(new DeviceChunkArrived(0, i, Last: false, buffer, chunk.Length, i % 4));
        }
    }

    private static int[] ShuffledInWindows(int count, int window, Random rng)
    {
        var order = Enumerable.Range(0, count).ToArray();
        for (var start = 0; start < count; start += window)
        {
            rng.Shuffle(order.AsSpan(start, Math.Min(window, count - start)));
        }

        return order;
    }

    /// <summary>Credited chunks and bytes, written by <see cref="CreditCounter"/>'s thread, read by the test's.</summary>
    private sealed class CreditTotals
    {
        private long _chunks;
        private long _bytes;
        private long _messages;

        public long Messages => Interlocked.Read(ref _messages);

        public long Chunks => Interlocked.Read(ref _chunks);

        public long Bytes => Interlocked.Read(ref _bytes);

        public void Add(DeviceCredit c)
        {
            Interlocked.Add(ref _bytes, c.Bytes);
            Interlocked.Add(ref _chunks, c.Chunks);
            Interlocked.Increment(ref _messages);
        }
    }

    /// <summary>Plays the source's coordinator: counts the credits and keeps nothing (a probe would queue them).</summary>
    private sealed class CreditCounter : ReceiveActor
    {
        public CreditCounter(CreditTotals totals) => Receive<DeviceCredit>(totals.Add);
    }
}

/// <summary>Specs that measure process-wide allocation: xunit runs this collection after the parallel ones, alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationMeasurement
{
    public const string Name = "allocation measurement (runs alone)";
}
