using Akka.Actor;

namespace Migration.Actors.Destination;

// In-process messages of the destination's device path. They carry rented buffers, so they never leave
// the process (INoSerializationVerificationNeeded). Buffer ownership is named on each message.

/// <summary>
/// A device chunk read by a receive channel. <see cref="Buffer"/> is rented from DeviceChunkBuffers.Shared by
/// the receive loop; ownership passes with the message (gate, then loader), and whoever drops the chunk returns it.
/// Its <see cref="Length"/> bytes were reserved in the migration's DeviceBufferBudget by the receive loop.
/// </summary>
public sealed record DeviceChunkArrived(int DeviceIndex, long Index, bool Last, byte[] Buffer, int Length, int ChannelIndex)
    : INoSerializationVerificationNeeded;

/// <summary>Gate -> loader: write this chunk next (chunks arrive at the loader strictly in index order).</summary>
public sealed record LoadChunk(DeviceChunkArrived Chunk) : INoSerializationVerificationNeeded;

/// <summary>Loader -> gate: chunk written to the device; the loader already returned the buffer.</summary>
public sealed record ChunkLoaded(long Index, int Length, long LoadTicks) : INoSerializationVerificationNeeded;

/// <summary>Loader -> gate -> owner: the last chunk was written and the device validated its state.</summary>
public sealed record DeviceLoaded(int DeviceIndex, string Digest, DeviceLoadStats Stats) : INoSerializationVerificationNeeded;

public sealed record DeviceLoadStats(string Id, long Chunks, long Bytes, long OutOfOrderChunks, long PeakBufferedBytes, double LoadMs);

/// <summary>Loader -> gate -> owner: the device rejected a write or the final validation.</summary>
public sealed record DeviceLoadFailed(int DeviceIndex, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Gate -> owner: the peer broke the device-chunk rules (duplicate index, index after the last chunk).</summary>
public sealed record GateViolation(int DeviceIndex, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Ask a gate for its counters. Reply: GateSnapshot.</summary>
public sealed record GetGateSnapshot : INoSerializationVerificationNeeded
{
    public static readonly GetGateSnapshot Instance = new();
}

public sealed record GateSnapshot(int DeviceIndex, long HeldBytes, long PeakHeldBytes, long OutOfOrderChunks, long NextIndex, long LoadedChunks)
    : INoSerializationVerificationNeeded;

/// <summary>
/// Incoming -> gate, after a channel's receive loop ended: which chunk indices do you hold? Every chunk that loop read
/// is already in the gate's mailbox ahead of this message. Reply: GateReceipt.
/// </summary>
public sealed record GetGateReceipt(int Channel) : INoSerializationVerificationNeeded;

/// <summary>Gate -> incoming: every index below Next was released to the loader; Held are waiting out of order.</summary>
public sealed record GateReceipt(int Channel, int DeviceIndex, long Next, long[] Held) : INoSerializationVerificationNeeded;
