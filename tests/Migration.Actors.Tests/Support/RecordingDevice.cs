using Migration.Devices.Device;

namespace Migration.Actors.Tests.Support;

/// <summary>
/// Wraps a real device and records what the loader does to it: the order of WriteChunk indices (recorded before
/// the inner device sees the write, so a rejected write is recorded too), how many writes completed, and the
/// largest number of writes that ever ran at once. An optional delay per write plays a slow device.
/// Threading: written on worker-pool threads, read by the test thread; all counters are synchronised.
/// </summary>
internal sealed class RecordingDevice(IMigratableDevice inner, TimeSpan writeDelay = default) : IMigratableDevice
{
    private readonly Lock _lock = new();
    private readonly List<long> _attempted = [];
    private int _completed;
    private int _active;
    private int _maxActive;

    public IMigratableDevice Inner => inner;

    /// <summary>Indices passed to WriteChunk, in call order.</summary>
    public IReadOnlyList<long> Attempted
    {
        get
        {
            lock (_lock)
            {
                return _attempted.ToArray();
            }
        }
    }

    /// <summary>Writes the inner device accepted (incremented after the write returned).</summary>
    public int CompletedWrites => Volatile.Read(ref _completed);

    public int MaxConcurrentWrites => Volatile.Read(ref _maxActive);

    public DeviceIdentity Identity => inner.Identity;
    public DeviceMigrationState State => inner.State;
    public long StateSizeBytes => inner.StateSizeBytes;
    public long StopCopyRemainingBytes => inner.StopCopyRemainingBytes;

    public void WriteChunk(long index, ReadOnlySpan<byte> data)
    {
        var active = Interlocked.Increment(ref _active);
        try
        {
            int seen;
            while (active > (seen = Volatile.Read(ref _maxActive)) && Interlocked.CompareExchange(ref _maxActive, active, seen) != seen)
            {
            }

            lock (_lock)
            {
                _attempted.Add(index);
            }

            if (writeDelay > TimeSpan.Zero)
            {
                Thread.Sleep(writeDelay);
            }

            inner.WriteChunk(index, data);
            Interlocked.Increment(ref _completed);
        }
        finally
        {
            Interlocked.Decrement(ref _active);
        }
    }

    public void StartPrecopy() => inner.StartPrecopy();
    public PrecopyInfo QueryPrecopy() => inner.QueryPrecopy();
    public int ReadPrecopy(Span<byte> destination) => inner.ReadPrecopy(destination);
    public void StartStopCopy() => inner.StartStopCopy();
    public int ReadStopCopy(Span<byte> destination) => inner.ReadStopCopy(destination);
    public void FinishStopCopy() => inner.FinishStopCopy();
    public void AbortToRunning() => inner.AbortToRunning();
    public void StartResuming() => inner.StartResuming();
    public void FinishResuming() => inner.FinishResuming();
    public void Resume() => inner.Resume();
    public void Reset() => inner.Reset();
    public UInt128 ComputeDigest() => inner.ComputeDigest();
}
