using System.IO.Hashing;

namespace Migration.Devices.Device.Vfio;

/// <summary>
/// Source side of one save: turns the region table into the record stream.
/// Precopy stream: the initial records (regions covering the first PrecopyBytes, in order), then re-sends of
/// regions that were dirtied after being sent. Stop-copy stream: first the rest of a record left half-read by
/// precopy, then, in region order, every region not yet sent at its current version.
/// Records may be split across reads at any byte; a record's version is fixed when its header is produced.
/// Threading: owned by the device, used under its lock. Lives from StartPrecopy/StartStopCopy to
/// FinishStopCopy/AbortToRunning.
/// </summary>
internal sealed class VfioSaveSession
{
    private readonly RegionTable _table;
    private readonly int _precopyRegions;
    private readonly bool[] _sent;
    private readonly uint[] _sentVersion;
    private readonly bool[] _queued;
    private readonly Queue<int> _dirtyQueue = new();
    private readonly XxHash3 _hasher = new();
    private readonly byte[] _header = new byte[RegionRecordHeader.Size];
    private int _initialCursor;
    private long _queuedBytes;

    // The record being produced (if _hasCurrent).
    private bool _hasCurrent;
    private bool _currentIsInitial;
    private int _currentRegion;
    private uint _currentVersion;
    private long _currentOffset; // within the record, header included
    private long _currentLength;

    // Stop-copy phase.
    private bool _stopCopy;
    private int _stopCursor;
    private long _stopRemaining;

    public VfioSaveSession(RegionTable table, int precopyRegions)
    {
        _table = table;
        _precopyRegions = precopyRegions;
        _sent = new bool[table.Count];
        _sentVersion = new uint[table.Count];
        _queued = new bool[table.Count];
    }

    public PrecopyInfo Query()
    {
        if (_stopCopy)
            return default;
        long currentLeft = _hasCurrent ? _currentLength - _currentOffset : 0;
        long initial = _table.RecordBytes(_initialCursor, _precopyRegions) + (_currentIsInitial ? currentLeft : 0);
        long dirty = _queuedBytes + (_hasCurrent && !_currentIsInitial ? currentLeft : 0);
        return new PrecopyInfo(initial, dirty);
    }

    /// <summary>Called after the table bumped the region's version while the device runs.</summary>
    public void OnDirtied(int region)
    {
        // Unsent regions go out at their newest version anyway; the in-flight one is re-queued when it completes.
        if (_sent[region] && !_queued[region] && !(_hasCurrent && _currentRegion == region))
            Enqueue(region);
    }

    public int ReadPrecopy(Span<byte> destination)
    {
        int written = 0;
        while (written < destination.Length)
        {
            if (!_hasCurrent && !NextPrecopyRecord())
                break;
            written += Emit(destination[written..]);
        }
        return written;
    }

    /// <summary>Freezes the set of records still to send; from now on the table does not change.</summary>
    public void BeginStopCopy()
    {
        _stopCopy = true;
        _stopCursor = 0;
        long remaining = _hasCurrent ? _currentLength - _currentOffset : 0;
        for (int r = 0; r < _table.Count; r++)
        {
            bool sentCurrent = _hasCurrent && r == _currentRegion
                ? _currentVersion == _table.VersionOf(r)
                : _sent[r] && _sentVersion[r] == _table.VersionOf(r);
            if (!sentCurrent)
                remaining += _table.RecordBytes(r);
        }
        _stopRemaining = remaining;
    }

    /// <summary>Exact in stop-copy; before it, what a stop-copy starting now would produce.</summary>
    public long StopCopyRemaining
    {
        get
        {
            if (_stopCopy)
                return _stopRemaining;
            long remaining = _hasCurrent ? _currentLength - _currentOffset : 0;
            for (int r = 0; r < _table.Count; r++)
            {
                bool inFlight = _hasCurrent && r == _currentRegion;
                if (!(inFlight ? _currentVersion == _table.VersionOf(r) : _sent[r] && _sentVersion[r] == _table.VersionOf(r)))
                    remaining += _table.RecordBytes(r);
            }
            return remaining;
        }
    }

    public int ReadStopCopy(Span<byte> destination)
    {
        int written = 0;
        while (written < destination.Length)
        {
            if (!_hasCurrent && !NextStopCopyRecord())
                break;
            int n = Emit(destination[written..]);
            written += n;
            _stopRemaining -= n;
        }
        return written;
    }

    private bool NextPrecopyRecord()
    {
        if (_initialCursor < _precopyRegions)
        {
            Begin(_initialCursor++, initial: true);
            return true;
        }
        if (_dirtyQueue.TryDequeue(out int region))
        {
            _queued[region] = false;
            _queuedBytes -= _table.RecordBytes(region);
            Begin(region, initial: false);
            return true;
        }
        return false;
    }

    private bool NextStopCopyRecord()
    {
        while (_stopCursor < _table.Count)
        {
            int r = _stopCursor++;
            if (!_sent[r] || _sentVersion[r] != _table.VersionOf(r))
            {
                Begin(r, initial: false);
                return true;
            }
        }
        return false;
    }

    private void Begin(int region, bool initial)
    {
        _hasCurrent = true;
        _currentIsInitial = initial;
        _currentRegion = region;
        _currentVersion = _table.VersionOf(region);
        _currentOffset = 0;
        int size = _table.SizeOf(region);
        _currentLength = RegionRecordHeader.Size + size;
        new RegionRecordHeader((uint)region, _currentVersion, (uint)size).WriteTo(_header);
        _hasher.Reset();
    }

    /// <summary>Writes as much of the current record as fits; completes it when its last byte is out.</summary>
    private int Emit(Span<byte> destination)
    {
        int written = 0;
        if (_currentOffset < RegionRecordHeader.Size)
        {
            int n = Math.Min(RegionRecordHeader.Size - (int)_currentOffset, destination.Length);
            _header.AsSpan((int)_currentOffset, n).CopyTo(destination);
            _currentOffset += n;
            written = n;
        }
        if (_currentOffset >= RegionRecordHeader.Size && written < destination.Length)
        {
            long payloadOffset = _currentOffset - RegionRecordHeader.Size;
            int n = (int)Math.Min(_currentLength - _currentOffset, destination.Length - written);
            Span<byte> slice = destination.Slice(written, n);
            _table.Generate(_currentRegion, _currentVersion, payloadOffset, slice);
            _hasher.Append(slice);
            _currentOffset += n;
            written += n;
        }
        if (_currentOffset == _currentLength)
            Complete();
        return written;
    }

    private void Complete()
    {
        int r = _currentRegion;
        _hasCurrent = false;
        _sent[r] = true;
        _sentVersion[r] = _currentVersion;
        _table.SetHash(r, _currentVersion, _hasher.GetCurrentHashAsUInt64());
        if (!_stopCopy && _table.VersionOf(r) != _currentVersion && !_queued[r])
            Enqueue(r); // dirtied while in flight
    }

    private void Enqueue(int region)
    {
        _queued[region] = true;
        _queuedBytes += _table.RecordBytes(region);
        _dirtyQueue.Enqueue(region);
    }
}
