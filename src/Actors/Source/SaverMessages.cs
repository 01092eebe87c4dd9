using Akka.Actor;

namespace Migration.Actors.Source;

// Coordinator <-> DeviceSaver (in-process).

/// <summary>Coordinator -> saver: the guest runs; move the device to PRE_COPY and start reading ahead.</summary>
public sealed record BeginPrecopySave : INoSerializationVerificationNeeded
{
    public static readonly BeginPrecopySave Instance = new();
}

/// <summary>Coordinator -> saver: the guest is stopped; move to STOP_COPY and read the rest.</summary>
public sealed record BeginStopCopySave : INoSerializationVerificationNeeded
{
    public static readonly BeginStopCopySave Instance = new();
}

/// <summary>
/// Coordinator -> saver: credit for <paramref name="Count"/> more chunks is reserved (a grant in bulk, not a request per
/// chunk). The saver pushes a ChunkReady for each granted chunk as soon as it is read, and gives back the grants it
/// cannot use now with one NoChunkNow when the device has no precopy data.
/// </summary>
public sealed record GrantChunks(int Count) : INoSerializationVerificationNeeded;

/// <summary>Saver -> coordinator: the next chunk of the device's stream (ownership of the buffer moves).</summary>
public sealed record ChunkReady(SavedChunk Chunk, DeviceSaveInfo Info) : INoSerializationVerificationNeeded;

/// <summary>
/// Saver -> coordinator: no precopy data available right now (more may come while the guest runs); the
/// <paramref name="Returned"/> grants it held are given back (their reserved credit is free again).
/// </summary>
public sealed record NoChunkNow(int DeviceIndex, DeviceSaveInfo Info, int Returned = 1) : INoSerializationVerificationNeeded;

/// <summary>Saver -> coordinator: the last chunk was read; the device's digest at stop time.</summary>
public sealed record DeviceSaved(int DeviceIndex, string Digest, long Chunks, long Bytes, long PrecopyBytes) : INoSerializationVerificationNeeded;

/// <summary>Saver -> coordinator: the device failed to save.</summary>
public sealed record DeviceSaveFailed(int DeviceIndex, string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Coordinator -> saver: migration aborted; put the device back to RUNNING and return buffers. The saver answers every
/// AbortSave with exactly one <see cref="SaveAborted"/>, sent once the device call that puts the device back has ended
/// (that call waits for any device call in flight: the device is driven by one thread at a time).
/// </summary>
public sealed record AbortSave : INoSerializationVerificationNeeded
{
    public static readonly AbortSave Instance = new();
}

/// <summary>
/// Saver -> coordinator: the abort is done; the device is back in RUNNING (Error = null) or could not be put back
/// (Error says why). No device call of this saver runs or starts after it.
/// </summary>
public sealed record SaveAborted(int DeviceIndex, string? Error) : INoSerializationVerificationNeeded;

/// <summary>
/// What a device still has to send, as last measured by its saver (for convergence estimates). ReadBytesPerMs: the
/// device's measured read throughput (bytes per ms inside its read calls, one call at a time); 0 = not measured yet.
/// </summary>
public readonly record struct DeviceSaveInfo(long PrecopyRemaining, long StopCopyRemaining, long ReadAheadBytes, double ReadBytesPerMs = 0);

// A DeviceSaver's messages to itself (results of its device calls on the pool, its timer); internal, never serialized.
// The read run's ReadDone and ReadRunEnded are in DeviceReadRun.cs.

/// <summary>A transition (StartPrecopy, StartStopCopy) ended; Info = what the device has to send after it.</summary>
internal sealed record TransitionDone(DeviceSaveInfo Info) : INoSerializationVerificationNeeded;

/// <summary>Look at a dry PRE_COPY device again (it may have dirtied more).</summary>
internal sealed record Repoll : INoSerializationVerificationNeeded
{
    public static readonly Repoll Instance = new();
}

/// <summary>A transition or read run on the pool threw.</summary>
internal sealed record SaverOpFailed(Exception Error) : INoSerializationVerificationNeeded;

/// <summary>The abort's last device call ended (Error = null: the device is back in RUNNING).</summary>
internal sealed record AbortDone(string? Error) : INoSerializationVerificationNeeded;
