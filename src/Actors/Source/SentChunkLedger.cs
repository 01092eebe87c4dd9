using Migration.Actors.Messages;

namespace Migration.Actors.Source;

/// <summary>
/// Every device chunk handed to a channel and not yet credited by the destination, with the channel that carries it.
/// The ledger owns the chunk's rented buffer from the moment it is handed to a channel: the channel only reads it,
/// and the ledger returns it to the pool when the destination's credit says the chunk was loaded (by then every byte
/// of it was sent). If a channel's connection is lost, the chunks it carried that the destination does not hold are
/// taken out here and sent again on another channel. The bytes held are bounded by the destination's budget, since
/// they are exactly the device bytes in flight in the <see cref="DeviceCreditPool"/>.
/// Owned by the MigrationCoordinator; used only on its thread.
/// </summary>
public sealed class SentChunkLedger
{
    private readonly Dictionary<long, Entry>[] _perDevice;

    public SentChunkLedger(int devices)
    {
        _perDevice = new Dictionary<long, Entry>[devices];
        for (var d = 0; d < devices; d++)
        {
            _perDevice[d] = new Dictionary<long, Entry>();
        }
    }

    public int Count => _perDevice.Sum(d => d.Count);

    public long Bytes => _perDevice.Sum(d => d.Values.Sum(e => (long)e.Chunk.Length));

    /// <summary>The chunk was handed to <paramref name="channel"/> (first send or resend).</summary>
    public void Sent(SavedChunk chunk, int channel) => _perDevice[chunk.DeviceIndex][chunk.Index] = new Entry(chunk, channel);

    /// <summary>
    /// The destination loaded chunk <paramref name="index"/> of <paramref name="device"/>: returns its buffer to the pool.
    /// Throws (a protocol violation by the destination) for a chunk that was never sent or a length that differs.
    /// </summary>
    public void Credited(int device, long index, long bytes)
    {
        if (!_perDevice[device].Remove(index, out var entry))
        {
            throw new InvalidOperationException($"device {device}: credit for chunk {index}, which is not in flight");
        }

        if (entry.Chunk.Length != bytes)
        {
            throw new InvalidOperationException($"device {device}: credit of {bytes} bytes for chunk {index} of {entry.Chunk.Length} bytes");
        }

        entry.Chunk.ReturnBuffer();
    }

    /// <summary>
    /// Channel <paramref name="channel"/> was lost: takes out, in index order per device, the chunks it carried that
    /// the destination does not hold (per <paramref name="receipts"/>). The caller sends them again (and records them
    /// with <see cref="Sent"/>); chunks the destination holds stay here until credited.
    /// </summary>
    public List<SavedChunk> TakeLost(int channel, IReadOnlyList<DeviceReceipt> receipts)
    {
        var lost = new List<SavedChunk>();
        for (var d = 0; d < _perDevice.Length; d++)
        {
            var receipt = d < receipts.Count ? receipts[d] : new DeviceReceipt(0, []);
            foreach (var (index, entry) in _perDevice[d].Where(e => e.Value.Channel == channel).OrderBy(e => e.Key).ToArray())
            {
                if (!receipt.Holds(index))
                {
                    _perDevice[d].Remove(index);
                    lost.Add(entry.Chunk);
                }
            }
        }

        return lost;
    }

    /// <summary>
    /// The migration ended without completing: forgets every chunk without returning its buffer, because a channel's
    /// stream may still be reading it; the garbage collector reclaims them.
    /// </summary>
    public void Abandon()
    {
        foreach (var d in _perDevice)
        {
            d.Clear();
        }
    }

    private readonly record struct Entry(SavedChunk Chunk, int Channel);
}
