using System.IO.Hashing;

namespace Migration.Devices.Device.Structured;

/// <summary>
/// A small vmstate-like device: named, typed fields under a versioned <see cref="StructuredSchema"/>.
/// It has no precopy data (QueryPrecopy reports 0, ReadPrecopy returns 0); STOP_COPY produces one blob
/// (<see cref="StructuredStateCodec"/>) of the values frozen at StartStopCopy. Loading concatenates the chunks in
/// index order (at most <see cref="StructuredStateCodec.MaxBlobBytes"/>) and parses them at FinishResuming; the
/// new values replace the old ones only when the whole blob is valid.
/// Threading: every member takes <c>_lock</c>; <see cref="Set"/> may be called by a "guest" thread while running.
/// </summary>
public sealed class StructuredDevice : IMigratableDevice
{
    private readonly Lock _lock = new();
    private readonly DeviceStateMachine _sm;
    private readonly FieldValue[] _initial;
    private FieldValue[] _values;
    private byte[]? _saveBlob;
    private int _saveOffset;
    private MemoryStream? _load;
    private long _nextChunk;

    /// <param name="initialValues">Values by field name; fields not given take their schema default. Also what Reset restores.</param>
    public StructuredDevice(string id, int instance, StructuredSchema schema, IReadOnlyDictionary<string, FieldValue>? initialValues = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        ArgumentNullException.ThrowIfNull(schema);
        Identity = new DeviceIdentity(id, DeviceKind.Structured, instance);
        Schema = schema;
        _sm = new DeviceStateMachine(id);
        _initial = schema.Fields.Select(f => f.Default).ToArray();
        foreach (var (name, value) in initialValues ?? new Dictionary<string, FieldValue>())
            _initial[CheckedIndex(name, value)] = value;
        _values = _initial.ToArray();
    }

    public DeviceIdentity Identity { get; }
    public StructuredSchema Schema { get; }
    public DeviceMigrationState State => _sm.State;

    /// <summary>Size of the blob a save would produce now.</summary>
    public long StateSizeBytes
    {
        get { lock (_lock) return Serialize().Length; }
    }

    public FieldValue Get(string name)
    {
        lock (_lock)
            return _values[CheckedIndex(name, null)];
    }

    /// <summary>The guest changes a field. Only while the device runs (Running | PreCopy); the value must have the field's type.</summary>
    public void Set(string name, FieldValue value)
    {
        lock (_lock)
        {
            int idx = CheckedIndex(name, value);
            _sm.Require($"Set('{name}')", DeviceMigrationState.Running, DeviceMigrationState.PreCopy);
            _values[idx] = value;
        }
    }

    /// <summary>All current values by field name (a copy).</summary>
    public IReadOnlyDictionary<string, FieldValue> Snapshot()
    {
        lock (_lock)
            return Schema.Fields.Select((f, i) => (f.Name, _values[i])).ToDictionary(p => p.Name, p => p.Item2);
    }

    public void StartPrecopy()
    {
        lock (_lock)
            _sm.Move(DeviceMigrationState.PreCopy, DeviceMigrationState.Running);
    }

    public PrecopyInfo QueryPrecopy()
    {
        lock (_lock)
        {
            _sm.Require(nameof(QueryPrecopy), DeviceMigrationState.PreCopy);
            return default;
        }
    }

    public int ReadPrecopy(Span<byte> destination)
    {
        lock (_lock)
        {
            _sm.Require(nameof(ReadPrecopy), DeviceMigrationState.PreCopy);
            return 0;
        }
    }

    public void StartStopCopy()
    {
        lock (_lock)
        {
            _sm.Move(DeviceMigrationState.StopCopy, DeviceMigrationState.PreCopy, DeviceMigrationState.Running, DeviceMigrationState.Stop);
            _saveBlob = Serialize();
            _saveOffset = 0;
        }
    }

    public long StopCopyRemainingBytes
    {
        get
        {
            lock (_lock)
            {
                return State switch
                {
                    DeviceMigrationState.StopCopy => _saveBlob!.Length - _saveOffset,
                    DeviceMigrationState.Running or DeviceMigrationState.PreCopy or DeviceMigrationState.Stop => Serialize().Length,
                    _ => 0,
                };
            }
        }
    }

    public int ReadStopCopy(Span<byte> destination)
    {
        lock (_lock)
        {
            _sm.Require(nameof(ReadStopCopy), DeviceMigrationState.StopCopy);
            int n = Math.Min(destination.Length, _saveBlob!.Length - _saveOffset);
            _saveBlob.AsSpan(_saveOffset, n).CopyTo(destination);
            _saveOffset += n;
            return n;
        }
    }

    public void FinishStopCopy()
    {
        lock (_lock)
        {
            _sm.Require(nameof(FinishStopCopy), DeviceMigrationState.StopCopy);
            int left = _saveBlob!.Length - _saveOffset;
            if (left != 0)
                throw new DeviceStateException($"device {Identity.Id}: FinishStopCopy with {left} stop-copy bytes unread");
            _sm.Move(DeviceMigrationState.Stop, DeviceMigrationState.StopCopy);
            _saveBlob = null;
        }
    }

    public void AbortToRunning()
    {
        lock (_lock)
        {
            _sm.Move(DeviceMigrationState.Running, DeviceMigrationState.PreCopy, DeviceMigrationState.StopCopy, DeviceMigrationState.Stop);
            _saveBlob = null;
        }
    }

    public void StartResuming()
    {
        lock (_lock)
        {
            _sm.Move(DeviceMigrationState.Resuming, DeviceMigrationState.Running, DeviceMigrationState.Stop);
            _saveBlob = null;
            _load = new MemoryStream();
            _nextChunk = 0;
        }
    }

    public void WriteChunk(long index, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            _sm.Require(nameof(WriteChunk), DeviceMigrationState.Resuming);
            if (index != _nextChunk)
                throw _sm.Fail(_nextChunk == 0
                    ? $"chunk {index} written first; expected 0"
                    : $"chunk {index} written after chunk {_nextChunk - 1}; expected {_nextChunk}");
            if (_load!.Length + data.Length > StructuredStateCodec.MaxBlobBytes)
                throw _sm.Fail($"chunk {index} brings the state to {_load.Length + data.Length} bytes, beyond the limit {StructuredStateCodec.MaxBlobBytes}");
            _load.Write(data);
            _nextChunk++;
        }
    }

    public void FinishResuming()
    {
        lock (_lock)
        {
            _sm.Require(nameof(FinishResuming), DeviceMigrationState.Resuming);
            if (!StructuredStateCodec.TryParse(_load!.GetBuffer().AsSpan(0, (int)_load.Length), Schema, out FieldValue[] values, out _, out string error))
                throw _sm.Fail($"{error} (after {_nextChunk} chunk(s), {_load.Length} bytes)");
            _values = values;
            _load = null;
            _sm.Move(DeviceMigrationState.Stop, DeviceMigrationState.Resuming);
        }
    }

    public void Resume()
    {
        lock (_lock)
            _sm.Move(DeviceMigrationState.Running, DeviceMigrationState.Stop);
    }

    public void Reset()
    {
        lock (_lock)
        {
            _sm.ResetToRunning();
            _values = _initial.ToArray();
            _saveBlob = null;
            _load = null;
        }
    }

    /// <summary>XxHash128 of the canonical blob (all fields at the schema's version).</summary>
    public UInt128 ComputeDigest()
    {
        lock (_lock)
        {
            _sm.Require(nameof(ComputeDigest), DeviceMigrationState.Stop, DeviceMigrationState.StopCopy,
                DeviceMigrationState.Running, DeviceMigrationState.PreCopy);
            return XxHash128.HashToUInt128(Serialize());
        }
    }

    public override string ToString() => $"structured device {Identity.Id} ({Schema.Name} v{Schema.Version}, {State})";

    private byte[] Serialize() => StructuredStateCodec.Serialize(Schema, Schema.Version, _values);

    private int CheckedIndex(string name, FieldValue? value)
    {
        int idx = Schema.IndexOf(name);
        if (idx < 0)
            throw new ArgumentException($"device {Identity.Id}: no field '{name}' in schema '{Schema.Name}' v{Schema.Version}", nameof(name));
        if (value is { } v && v.Type != Schema.Fields[idx].Type)
            throw new ArgumentException($"device {Identity.Id}: field '{name}' is {Schema.Fields[idx].Type}, got a {v.Type} value", nameof(value));
        return idx;
    }
}
