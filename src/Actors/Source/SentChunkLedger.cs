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
    public void Credited(int device, long index, long bytes) => Credited(device, index, 1, bytes);

    /// <summary>
    /// The destination loaded the <paramref name="chunks"/> consecutive chunks <paramref name="first"/> .. first+chunks-1
    /// of <paramref name="device"/> (one batched credit; the destination loads a device's chunks in index order, so a
    /// batch is always a range) and returns <paramref name="bytes"/>, which must be exactly their lengths summed.
    /// All or nothing: a batch naming a chunk that is not in flight (never sent, or credited before: a duplicate), or
    /// with a byte sum that differs, throws (a protocol violation by the destination) and the ledger is unchanged.
    /// </summary>
    public void Credited(int device, long first, int chunks, long bytes)
    {
        if (chunks < 1 || first < 0 || first > long.MaxValue - chunks)
        {
            throw new InvalidOperationException($"device {device}: credit for {chunks} chunks from index {first}; expected at least one chunk at an index >= 0");
        }

        var entries = _perDevice[device];
        long sum = 0;
        for (var i = first; i < first + chunks; i++)
        {
            if (!entries.TryGetValue(i, out var entry))
            {
                throw new InvalidOperationException(chunks == 1
                    ? $"device {device}: credit for chunk {i}, which is not in flight"
                    : $"device {device}: credit for chunks {first}..{first + chunks - 1} names chunk {i}, which is not in flight");
            }

            sum += entry.Chunk.Length;
        }

        if (sum != bytes)
        {
            throw new InvalidOperationException(chunks == 1
                ? $"device {device}: credit of {bytes} bytes for chunk {first} of {sum} bytes"
                : $"device {device}: credit of {bytes} bytes for chunks {first}..{first + chunks - 1} of {sum} bytes");
        }

        for (var i = first; i < first + chunks; i++)
        {
            entries.Remove(i, out var entry);
            entry.Chunk.ReturnBuffer();
        }
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
