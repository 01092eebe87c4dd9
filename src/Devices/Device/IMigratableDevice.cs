namespace Migration.Devices.Device;

/// <summary>Family of a device. Wire value: 0 is reserved as invalid.</summary>
public enum DeviceKind : byte
{
    /// <summary>Large opaque state read as an ordered byte stream (like VFIO migration v2 data_fd).</summary>
    Vfio = 1,
    /// <summary>Small versioned set of named, typed fields (like QEMU vmstate).</summary>
    Structured = 2,
}

/// <summary>Identity of a device inside one guest. <see cref="Id"/> is unique per guest.</summary>
public sealed record DeviceIdentity(string Id, DeviceKind Kind, int Instance);

/// <summary>
/// Device migration states, modelled on VFIO migration v2 (linux/vfio.h).
/// Legal transitions (anything else throws <see cref="DeviceStateException"/>):
/// Running -> PreCopy | Stop; PreCopy -> StopCopy | Running (abort); Stop -> StopCopy | Resuming | Running;
/// StopCopy -> Stop (save finished) | Running (abort); Resuming -> Stop (load finished, validated).
/// Any state -> Error when the device detects corruption; Error only leaves by <see cref="IMigratableDevice.Reset"/>.
/// </summary>
public enum DeviceMigrationState : byte
{
    Running = 1,
    PreCopy = 2,
    Stop = 3,
    StopCopy = 4,
    Resuming = 5,
    Error = 6,
}

/// <summary>What a device still has to send while the guest runs (VFIO_MIG_GET_PRECOPY_INFO).</summary>
public readonly record struct PrecopyInfo(long InitialBytes, long DirtyBytes)
{
    public long Total => InitialBytes + DirtyBytes;
}

/// <summary>
/// The one generic device-state interface. Every device (stream or structured) migrates through it.
/// Save side: <see cref="StartPrecopy"/>, then <see cref="ReadPrecopy"/> while the guest runs,
/// then <see cref="StartStopCopy"/> (the guest is stopped), then <see cref="ReadStopCopy"/> until it returns 0.
/// Load side: <see cref="StartResuming"/>, then <see cref="WriteChunk"/> with indices 0,1,2,... strictly
/// in order, then <see cref="FinishResuming"/>.
/// The state is a single ordered byte stream: precopy bytes followed by stop-copy bytes; the
/// destination writes exactly the concatenation of what the source read, chunked arbitrarily.
/// Threading: a device is driven by one thread at a time (its saver or loader); implementations
/// need not be thread-safe except <see cref="QueryPrecopy"/> and <see cref="State"/>, which may be read
/// concurrently for progress reporting.
/// </summary>
public interface IMigratableDevice
{
    DeviceIdentity Identity { get; }

    DeviceMigrationState State { get; }

    /// <summary>Total size of the device state if saved now (bytes); for progress and estimates.</summary>
    long StateSizeBytes { get; }

    /// <summary>Running -> PreCopy. Devices with no precopy data still accept it (QueryPrecopy then reports 0).</summary>
    void StartPrecopy();

    /// <summary>Precopy bytes still to read now (initial not yet read + dirtied since read). PreCopy only.</summary>
    PrecopyInfo QueryPrecopy();

    /// <summary>
    /// Reads precopy data into <paramref name="destination"/>; returns the count, 0 when nothing is available now
    /// (more may become available later while the guest runs). PreCopy only.
    /// </summary>
    int ReadPrecopy(Span<byte> destination);

    /// <summary>PreCopy | Running -> StopCopy. The guest is stopped; the device no longer changes.</summary>
    void StartStopCopy();

    /// <summary>Bytes still to read in StopCopy (exact for the simulated devices).</summary>
    long StopCopyRemainingBytes { get; }

    /// <summary>Reads stop-copy data; returns 0 at end of state. StopCopy only.</summary>
    int ReadStopCopy(Span<byte> destination);

    /// <summary>StopCopy -> Stop once all stop-copy data was read (the source keeps it stopped until commit/abort).</summary>
    void FinishStopCopy();

    /// <summary>Source abort: PreCopy | StopCopy | Stop -> Running. The device keeps its state and runs on.</summary>
    void AbortToRunning();

    /// <summary>Destination: Running | Stop -> Resuming. Discards any previous state.</summary>
    void StartResuming();

    /// <summary>
    /// Writes chunk <paramref name="index"/>. Indices must be 0,1,2,... without gap or duplicate; anything else
    /// throws <see cref="DeviceStateException"/> and puts the device in Error (a real driver would corrupt itself).
    /// </summary>
    void WriteChunk(long index, ReadOnlySpan<byte> data);

    /// <summary>Resuming -> Stop. Throws if the state is incomplete (short load) or malformed.</summary>
    void FinishResuming();

    /// <summary>Stop -> Running (destination after commit).</summary>
    void Resume();

    /// <summary>Error | any -> Running with empty/initial state; used to discard a failed incoming load.</summary>
    void Reset();

    /// <summary>
    /// 128-bit digest of the current device state (what a load would reproduce). Source: call when stopped;
    /// destination: after FinishResuming. Equal digests mean equal state.
    /// </summary>
    UInt128 ComputeDigest();
}

/// <summary>Thrown by a device on an illegal transition or a corrupting write (out of order, duplicate, short, malformed).</summary>
public sealed class DeviceStateException(string message) : Exception(message);
