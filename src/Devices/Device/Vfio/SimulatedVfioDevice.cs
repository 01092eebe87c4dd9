using Migration.Devices.Util;

namespace Migration.Devices.Device.Vfio;

/// <summary>
/// A simulated VFIO migration-v2 device with a large opaque state (up to several GiB) that is never held in
/// memory: the state is N regions of <see cref="SimulatedVfioOptions.RegionSize"/> bytes, each known only by
/// its version, with content generated from (seed, region, version). The save stream is a sequence of
/// <see cref="RegionRecordHeader"/> records (see <see cref="VfioSaveSession"/>); loading verifies every byte
/// (see <see cref="VfioLoadSession"/>), so corruption, reordering and short loads are caught like a real driver
/// would (by failing), not silently.
/// While Running or PreCopy the device dirties random regions at <see cref="SimulatedVfioOptions.DirtyRateBytesPerSecond"/>,
/// computed lazily from elapsed time whenever it is queried or read (no background thread).
/// Threading: every member takes <c>_lock</c>, so <see cref="QueryPrecopy"/> and <see cref="State"/> may be
/// called from a progress reporter while the saver/loader thread drives the device.
/// </summary>
public sealed class SimulatedVfioDevice : IMigratableDevice
{
    private readonly SimulatedVfioOptions _options;
    private readonly Lock _lock = new();
    private readonly DeviceStateMachine _sm;
    private readonly RegionTable _table;
    private readonly TimeProvider _clock;
    private readonly int _precopyRegions;
    private Xoshiro256StarStar _dirtyRng;
    private long _dirtyClockTicks;
    private double _dirtyBudgetBytes;
    private VfioSaveSession? _save;
    private VfioLoadSession? _load;
    private TimeSpan _loadDelayDebt;

    public SimulatedVfioDevice(SimulatedVfioOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        Identity = new DeviceIdentity(options.Id, DeviceKind.Vfio, options.Instance);
        _sm = new DeviceStateMachine(options.Id);
        _table = new RegionTable(options);
        _clock = options.Clock ?? TimeProvider.System;
        _precopyRegions = (int)((options.PrecopyBytes + options.RegionSize - 1) / options.RegionSize);
        _dirtyRng = new Xoshiro256StarStar(SplitMix64.Key((ulong)options.Seed, 0x6469727479));
        RestartDirtyClock();
    }

    public DeviceIdentity Identity { get; }
    public SimulatedVfioOptions Options => _options;
    public DeviceMigrationState State => _sm.State;
    public long StateSizeBytes => _options.StateSizeBytes;
    public int RegionCount => _table.Count;

    /// <summary>Total regions dirtied so far (by the rate or by <see cref="SimulateActivity"/>).</summary>
    public long RegionsDirtied { get; private set; }

    /// <summary>Current version of a region (0 until the device first changes it).</summary>
    public uint RegionVersion(int region)
    {
        lock (_lock)
        {
            if ((uint)region >= (uint)_table.Count)
                throw new ArgumentOutOfRangeException(nameof(region), $"region {region} beyond device {Identity.Id}'s {_table.Count} regions");
            return _table.VersionOf(region);
        }
    }

    /// <summary>
    /// Makes the running device change about <paramref name="bytes"/> of state now (whole random regions),
    /// independent of the configured rate. Running | PreCopy only. Returns the number of regions dirtied.
    /// </summary>
    public int SimulateActivity(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_lock)
        {
            _sm.Require(nameof(SimulateActivity), DeviceMigrationState.Running, DeviceMigrationState.PreCopy);
            int count = (int)Math.Min((bytes + _table.RegionSize - 1) / _table.RegionSize, 4L * _table.Count);
            DirtyRandomRegions(count);
            return count;
        }
    }

    public void StartPrecopy()
    {
        lock (_lock)
        {
            AdvanceDirtying();
            _sm.Move(DeviceMigrationState.PreCopy, DeviceMigrationState.Running);
            _save = new VfioSaveSession(_table, _precopyRegions);
        }
    }

    public PrecopyInfo QueryPrecopy()
    {
        lock (_lock)
        {
            _sm.Require(nameof(QueryPrecopy), DeviceMigrationState.PreCopy);
            AdvanceDirtying();
            return _save!.Query();
        }
    }

    public int ReadPrecopy(Span<byte> destination)
    {
        lock (_lock)
        {
            _sm.Require(nameof(ReadPrecopy), DeviceMigrationState.PreCopy);
            AdvanceDirtying();
            return _save!.ReadPrecopy(destination);
        }
    }

    public void StartStopCopy()
    {
        lock (_lock)
        {
            AdvanceDirtying(); // last changes before the device freezes
            DeviceMigrationState from = _sm.Move(DeviceMigrationState.StopCopy,
                DeviceMigrationState.PreCopy, DeviceMigrationState.Running, DeviceMigrationState.Stop);
            if (from != DeviceMigrationState.PreCopy)
                _save = new VfioSaveSession(_table, 0); // a fresh full save
            _save!.BeginStopCopy();
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
                    DeviceMigrationState.StopCopy or DeviceMigrationState.PreCopy => _save!.StopCopyRemaining,
                    DeviceMigrationState.Running or DeviceMigrationState.Stop => _table.RecordBytes(0, _table.Count),
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
            return _save!.ReadStopCopy(destination);
        }
    }

    public void FinishStopCopy()
    {
        lock (_lock)
        {
            _sm.Require(nameof(FinishStopCopy), DeviceMigrationState.StopCopy);
            long left = _save!.StopCopyRemaining;
            if (left != 0)
                throw new DeviceStateException($"device {Identity.Id}: FinishStopCopy with {left} stop-copy bytes unread");
            _sm.Move(DeviceMigrationState.Stop, DeviceMigrationState.StopCopy);
            _save = null;
        }
    }

    public void AbortToRunning()
    {
        lock (_lock)
        {
            _sm.Move(DeviceMigrationState.Running, DeviceMigrationState.PreCopy, DeviceMigrationState.StopCopy, DeviceMigrationState.Stop);
            _save = null;
            RestartDirtyClock();
        }
    }

    public void StartResuming()
    {
        lock (_lock)
        {
            _sm.Move(DeviceMigrationState.Resuming, DeviceMigrationState.Running, DeviceMigrationState.Stop);
            _save = null;
            _table.ResetVersions();
            _load = new VfioLoadSession(_table);
            _loadDelayDebt = TimeSpan.Zero;
        }
    }

    public void WriteChunk(long index, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            _sm.Require(nameof(WriteChunk), DeviceMigrationState.Resuming);
            try
            {
                _load!.Write(index, data);
            }
            catch (VfioStreamException e)
            {
                throw _sm.Fail(e.Message);
            }
            _loadDelayDebt += _options.LoadDelayPerMiB * (data.Length / (double)(1 << 20));
            PayLoadDelay(minimum: TimeSpan.FromMilliseconds(1));
        }
    }

    public void FinishResuming()
    {
        lock (_lock)
        {
            _sm.Require(nameof(FinishResuming), DeviceMigrationState.Resuming);
            try
            {
                _load!.Finish();
            }
            catch (VfioStreamException e)
            {
                throw _sm.Fail(e.Message);
            }
            PayLoadDelay(minimum: TimeSpan.Zero);
            _sm.Move(DeviceMigrationState.Stop, DeviceMigrationState.Resuming);
            _load = null;
        }
    }

    public void Resume()
    {
        lock (_lock)
        {
            _sm.Move(DeviceMigrationState.Running, DeviceMigrationState.Stop);
            RestartDirtyClock();
        }
    }

    public void Reset()
    {
        lock (_lock)
        {
            _sm.ResetToRunning();
            _save = null;
            _load = null;
            _table.ResetVersions();
            RestartDirtyClock();
        }
    }

    public UInt128 ComputeDigest()
    {
        lock (_lock)
        {
            _sm.Require(nameof(ComputeDigest), DeviceMigrationState.Stop, DeviceMigrationState.StopCopy,
                DeviceMigrationState.Running, DeviceMigrationState.PreCopy);
            return _table.Digest();
        }
    }

    public override string ToString() => $"vfio device {Identity.Id} ({_table.Count} regions, {State})";

    private void RestartDirtyClock()
    {
        _dirtyClockTicks = _clock.GetTimestamp();
        _dirtyBudgetBytes = 0;
    }

    /// <summary>Applies the dirtying the configured rate implies since the last call (Running | PreCopy only).</summary>
    private void AdvanceDirtying()
    {
        DeviceMigrationState s = State;
        if (_options.DirtyRateBytesPerSecond == 0 || (s != DeviceMigrationState.Running && s != DeviceMigrationState.PreCopy))
            return;
        long now = _clock.GetTimestamp();
        _dirtyBudgetBytes += _clock.GetElapsedTime(_dirtyClockTicks, now).TotalSeconds * _options.DirtyRateBytesPerSecond;
        _dirtyClockTicks = now;
        long count = (long)(_dirtyBudgetBytes / _table.RegionSize);
        if (count == 0)
            return;
        _dirtyBudgetBytes -= count * (double)_table.RegionSize;
        // After a long idle stretch everything is dirty anyway; cap the work.
        DirtyRandomRegions((int)Math.Min(count, 4L * _table.Count));
    }

    private void DirtyRandomRegions(int count)
    {
        for (int i = 0; i < count; i++)
        {
            int region = (int)_dirtyRng.NextBelow((ulong)_table.Count);
            _table.Bump(region);
            _save?.OnDirtied(region);
        }
        RegionsDirtied += count;
    }

    private void PayLoadDelay(TimeSpan minimum)
    {
        // Sleep in >= 1 ms steps (timer granularity); FinishResuming pays what is left.
        if (_loadDelayDebt <= TimeSpan.Zero || _loadDelayDebt < minimum)
            return;
        long start = _clock.GetTimestamp();
        Thread.Sleep(_loadDelayDebt);
        _loadDelayDebt -= _clock.GetElapsedTime(start);
    }
}
