using System.Buffers;
using Akka.Actor;
using Migration.Devices.Ram;

namespace Migration.Actors.Source;

// Work handed to a SendChannel. In-process only: they carry rented arrays (INoSerializationVerificationNeeded).

/// <summary>Base of the jobs a send channel executes in FIFO order.</summary>
public abstract record SendJob : INoSerializationVerificationNeeded;

/// <summary>
/// Up to packet-pages dirty pages of one block. <see cref="Pages"/> is rented from ArrayPool&lt;long&gt;.Shared by the
/// RamScanner; the SendChannel's stream returns it after the packet was sent (or dropped; jobs still queued in a lost
/// connection's stream are left to the GC, their pages are in the coordinator's RamSendLog).
/// </summary>
public sealed record RamJob(int BlockIndex, RamBlock Block, long[] Pages, int Count, uint Iteration) : SendJob
{
    public void ReturnPages() => ArrayPool<long>.Shared.Return(Pages);
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
