using System.IO.Hashing;

namespace Migration.Devices.Device.Vfio;

/// <summary>
/// Destination side of one load: parses the record stream incrementally across chunks (a record, even its
/// header, may span any number of chunks), checks every header field against the device layout, verifies
/// every payload byte against the generator (a mismatch is corruption) and hashes it for the digest.
/// A region's new version takes effect only when its record is complete. Errors are reported as
/// <see cref="VfioStreamException"/> with a message the device prefixes with its id.
/// Threading: owned by the device, used under its lock; lives from StartResuming to FinishResuming/Reset.
/// </summary>
internal sealed class VfioLoadSession
{
    private readonly RegionTable _table;
    private readonly bool[] _loaded;
    private readonly byte[] _header = new byte[RegionRecordHeader.Size];
    private readonly XxHash3 _hasher = new();
    private int _loadedCount;
    private long _nextChunk;
    private long _streamOffset;
    private int _headerFill;
    private bool _inPayload;
    private int _region;
    private uint _version;
    private int _length;
    private int _payloadOffset;

    public VfioLoadSession(RegionTable table)
    {
        _table = table;
        _loaded = new bool[table.Count];
    }

    public long ChunksWritten => _nextChunk;

    public void Write(long index, ReadOnlySpan<byte> data)
    {
        if (index != _nextChunk)
            throw new VfioStreamException(_nextChunk == 0
                ? $"chunk {index} written first; expected 0"
                : $"chunk {index} written after chunk {_nextChunk - 1}; expected {_nextChunk}");
        while (!data.IsEmpty)
        {
            int n = _inPayload ? ConsumePayload(index, data) : ConsumeHeader(index, data);
            data = data[n..];
            _streamOffset += n;
        }
        _nextChunk++;
    }

    /// <summary>Checks the stream ended on a record boundary and every region was loaded at least once.</summary>
    public void Finish()
    {
        if (_inPayload)
            throw new VfioStreamException($"short load: stream ends inside the record of region {_region} ({_payloadOffset} of {_length} bytes) after {_nextChunk} chunk(s)");
        if (_headerFill != 0)
            throw new VfioStreamException($"short load: stream ends inside a record header ({_headerFill} of {RegionRecordHeader.Size} bytes) after {_nextChunk} chunk(s)");
        if (_loadedCount != _table.Count)
        {
            int first = Array.IndexOf(_loaded, false);
            throw new VfioStreamException($"short load: {_table.Count - _loadedCount} of {_table.Count} regions never loaded (first: region {first}) after {_nextChunk} chunk(s)");
        }
    }

    private int ConsumeHeader(long chunk, ReadOnlySpan<byte> data)
    {
        int n = Math.Min(RegionRecordHeader.Size - _headerFill, data.Length);
        data[..n].CopyTo(_header.AsSpan(_headerFill));
        _headerFill += n;
        if (_headerFill < RegionRecordHeader.Size)
            return n;
        _headerFill = 0;
        // The record's position, formatted only for an error: a string per record would be the load's only allocation.
        long at = _streamOffset + n - RegionRecordHeader.Size;
        if (!RegionRecordHeader.TryRead(_header, out RegionRecordHeader h, out string error))
            throw new VfioStreamException($"{At(chunk, at)}: {error}");
        if (h.RegionIndex >= (uint)_table.Count)
            throw new VfioStreamException($"{At(chunk, at)}: region {h.RegionIndex} beyond the device's {_table.Count} regions");
        int region = (int)h.RegionIndex;
        int size = _table.SizeOf(region);
        if (h.Length != (uint)size)
            throw new VfioStreamException($"{At(chunk, at)}: region {region} record length {h.Length}, expected {size}");
        if (_loaded[region] && h.Version <= _table.VersionOf(region))
            throw new VfioStreamException($"{At(chunk, at)}: region {region} version {h.Version} after version {_table.VersionOf(region)} was loaded; versions must increase");
        _inPayload = true;
        _region = region;
        _version = h.Version;
        _length = size;
        _payloadOffset = 0;
        _hasher.Reset();
        return n;
    }

    private static string At(long chunk, long streamOffset) => $"chunk {chunk} (stream offset {streamOffset})";

    private int ConsumePayload(long chunk, ReadOnlySpan<byte> data)
    {
        int n = Math.Min(_length - _payloadOffset, data.Length);
        byte[] scratch = _table.Scratch;
        for (int done = 0; done < n;)
        {
            int piece = Math.Min(scratch.Length, n - done);
            ReadOnlySpan<byte> actual = data.Slice(done, piece);
            Span<byte> expected = scratch.AsSpan(0, piece);
            _table.Generate(_region, _version, _payloadOffset + done, expected);
            if (!actual.SequenceEqual(expected))
            {
                int bad = _payloadOffset + done + actual.CommonPrefixLength(expected);
                throw new VfioStreamException($"chunk {chunk}: region {_region} version {_version} differs from its content at byte {bad} (corrupted)");
            }
            done += piece;
        }
        _hasher.Append(data[..n]);
        _payloadOffset += n;
        if (_payloadOffset == _length)
        {
            _inPayload = false;
            _table.SetVersion(_region, _version);
            _table.SetHash(_region, _version, _hasher.GetCurrentHashAsUInt64());
            if (!_loaded[_region])
            {
                _loaded[_region] = true;
                _loadedCount++;
            }
        }
        return n;
    }
}

/// <summary>A malformed or out-of-order load stream; the device turns it into a <see cref="DeviceStateException"/> and Error.</summary>
internal sealed class VfioStreamException(string message) : Exception(message);
