using System.Buffers;

namespace Migration.Transport.Flow;

/// <summary>
/// The node's pool for device chunk buffers, on both sides of a migration. Up to a migration's whole device budget of
/// chunks is out at once (source: the SentChunkLedger keeps every chunk until it is credited, plus each saver's
/// read-ahead; destination: a receive loop rents each chunk, the reorder gate holds it, the device loader returns it
/// after the write), i.e. 64+ buffers of 1 MiB: more of one size than ArrayPool&lt;byte&gt;.Shared keeps (32 per core
/// partition plus one per thread, and trimmed at every gen2 collection), and every buffer it cannot keep becomes 1 MiB
/// of garbage. This pool (<see cref="ChunkBufferPool"/>) keeps up to <see cref="MaxBuffersPerSize"/> idle buffers of the
/// chunk size last prepared and none of any other, so a node holds between migrations about as many chunk buffers as
/// its busiest migration of that size had out at once (bounded by the device budget plus read-ahead, e.g. 64 + 8 MiB;
/// the destination fills it for no more than the guest's device state), and the next migration allocates none. One
/// pool for both directions, so a node that sends and receives keeps one set. Thread-safe: renters and returners are on
/// different threads. Every rented buffer names its owner where it is rented (PacketReceiver, DeviceSaver); whoever
/// drops a chunk returns it here.
/// </summary>
public static class DeviceChunkBuffers
{
    public const int MaxBuffersPerSize = 256;

    public static ChunkBufferPool Shared { get; } = new(MaxBuffersPerSize);

    /// <summary>
    /// Makes the pool hold at least enough buffers of <paramref name="chunkSize"/> for <paramref name="budgetBytes"/> of
    /// chunks out at once (plus one): a migration's chunk buffers are then allocated when it is prepared (once per node,
    /// and not at all when an earlier migration of the same chunk size left them), not one by one while its chunks
    /// stream. Thread-safe; a concurrent renter may take some of them, which it would have allocated anyway.
    /// </summary>
    public static void Prepare(long budgetBytes, int chunkSize)
    {
        if (budgetBytes <= 0 || chunkSize <= 0)
        {
            return;
        }

        Shared.Prepare((int)Math.Min(MaxBuffersPerSize, budgetBytes / chunkSize + 1), chunkSize);
    }
}
