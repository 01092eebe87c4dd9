using Migration.Transport.Wire;

namespace Migration.Transport.Channels;

/// <summary>
/// Where a destination channel's receive loop delivers what is not RAM. All members are called on the
/// receive loop (not an actor thread); implementations forward to actors by Tell.
/// </summary>
public interface IInboundPacketSink
{
    /// <summary>Reserves a device chunk's bytes in the migration's budget; false = the sender exceeded its credit.</summary>
    bool TryReserveDeviceBytes(int length, out string budgetState);

    /// <summary>Gives back a reservation whose chunk was not delivered (the connection broke while reading it).</summary>
    void ReleaseDeviceBytes(int length);

    /// <summary>
    /// A verified device chunk. <paramref name="buffer"/> is rented from <see cref="Flow.DeviceChunkBuffers"/> (or empty for an
    /// empty chunk); ownership passes to the sink, and the chunk's length stays reserved until the gate releases it.
    /// </summary>
    void OnDeviceChunk(in DeviceChunkHeader header, byte[] buffer);

    /// <summary>Sync(iteration) read; the loop stops reading until the returned task completes (the barrier).</summary>
    ValueTask OnSyncAsync(uint iteration);
}
