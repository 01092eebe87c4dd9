using System.Buffers;
using Akka.Actor;
using Migration.Devices.Ram;

namespace Migration.Actors.Source;

// Work handed to a SendChannel. In-process only: they carry rented arrays (INoSerializationVerificationNeeded).

/// <summary>Base of the jobs a send channel executes in FIFO order.</summary>
public abstract record SendJob : INoSerializationVerificationNeeded;

/// <summary>
/// Up to packet-pages dirty pages of one block. Pooled (no allocation per packet): the RamScanner takes a job from its
/// <see cref="RamJobPool"/>, fills <see cref="Pages"/> (the job's own array, kept with it across uses) and hands it out;
/// whoever is done with it last (the channel's sender after the packet was sent, or whoever drops it) calls
/// <see cref="ReturnPages"/>, which puts the job back into the pool. Nobody may touch a job after returning it. The
/// number of jobs alive is bounded by the channels' queue depth. A job made with the public constructor (tests, tools)
/// has no pool: its Pages are rented from ArrayPool&lt;long&gt;.Shared and ReturnPages returns them there.
/// </summary>
public sealed record RamJob : SendJob
{
    private readonly RamJobPool? _pool;

    public RamJob(int blockIndex, RamBlock block, long[] pages, int count, uint iteration)
    {
        Pages = pages;
        Block = block;
        Set(blockIndex, block, count, iteration);
    }

    internal RamJob(RamJobPool pool, int capacity)
    {
        _pool = pool;
        Pages = new long[capacity];
        Block = null!;
    }

    public int BlockIndex { get; private set; }
    public RamBlock Block { get; private set; }
    public long[] Pages { get; }
    public int Count { get; private set; }
    public uint Iteration { get; private set; }

    internal void Set(int blockIndex, RamBlock block, int count, uint iteration)
    {
        BlockIndex = blockIndex;
        Block = block;
        Count = count;
        Iteration = iteration;
    }

    public void ReturnPages()
    {
        if (_pool is null)
        {
            ArrayPool<long>.Shared.Return(Pages);
        }
        else
        {
            Block = null!;
            _pool.Return(this);
        }
    }
}

/// <summary>
/// The RAM jobs of one migration's scanner, reused. Rent on the coordinator's thread, Return from any thread (the
/// channels' sender threads): a ConcurrentQueue, which allocates nothing once its segment holds the jobs in use.
/// </summary>
public sealed class RamJobPool(int pagesPerPacket)
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<RamJob> _free = new();

    /// <summary>Jobs ever made (for tests: the pool's bound).</summary>
    public int Created { get; private set; }

    public RamJob Rent()
    {
        if (_free.TryDequeue(out var job))
        {
            return job;
        }

        Created++;
        return new RamJob(this, pagesPerPacket);
    }

    internal void Return(RamJob job) => _free.Enqueue(job);
}

/// <summary>
/// One device-state chunk to send. The channel only reads its buffer: from the moment the coordinator hands the job to
/// a channel, the chunk belongs to the coordinator's SentChunkLedger, which returns the buffer to its pool when the
/// destination credits the chunk (or resends it if the channel's connection is lost).
/// </summary>
public sealed record DeviceChunkJob(SavedChunk Chunk, uint Instance) : SendJob;

/// <summary>End of precopy iteration <see cref="Iteration"/> on this channel.</summary>
public sealed record SyncJob(uint Iteration) : SendJob;

/// <summary>End of stream on this channel; nothing follows.</summary>
public sealed record EndJob : SendJob
{
    public static readonly EndJob Instance = new();
}

/// <summary>
/// A chunk read from a device by its saver. Index is consecutive per device across both phases.
/// Ownership of <see cref="Buffer"/> (rented from <see cref="Pool"/>, ArrayPool&lt;byte&gt;.Shared when null; may be an
/// empty array for an empty last chunk) moves with the record: saver, coordinator's ready queue, then the
/// SentChunkLedger once handed to a channel, which returns it when the destination credits the chunk.
/// </summary>
public sealed record SavedChunk(int DeviceIndex, long Index, bool StopCopy, bool Last, byte[] Buffer, int Length, ArrayPool<byte>? Pool = null)
{
    public void ReturnBuffer()
    {
        if (Buffer.Length > 0)
        {
            (Pool ?? ArrayPool<byte>.Shared).Return(Buffer);
        }
    }
}
