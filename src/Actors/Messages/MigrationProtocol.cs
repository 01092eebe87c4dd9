using Akka.Actor;
using Migration.Actors.Settings;
using Migration.Devices.Guest;

namespace Migration.Actors.Messages;

// Source <-> destination control plane of one migration (see docs/protocol.md for the sequence).
// Digests travel as 32-hex-digit strings (XxHash128).

/// <summary>
/// Source coordinator -> destination node: allocate an empty guest and accept channels. Carries what a source may ask
/// for (<see cref="MigrationParameters"/>), never the source's node settings; the destination validates both the spec and
/// the parameters and applies its own limits (IncomingAdmission).
/// </summary>
public sealed record PrepareIncoming(Guid MigrationId, GuestSpec Spec, MigrationParameters Parameters, IActorRef Source) : IMigrationMessage;

/// <summary>
/// Destination -> source: ready; open channels to Host:Port proving Token. <paramref name="RawRamUnderCodec"/>: this
/// destination takes RAM packets with codec None under a negotiated codec (early abort, docs/protocol.md); a
/// destination that does not say so gets every packet compressed.
/// </summary>
public sealed record PrepareAck(Guid MigrationId, string Host, int Port, byte[] Token, long DeviceBufferBudget, IActorRef Incoming, bool Tls = false,
    bool RawRamUnderCodec = false) : IMigrationMessage;

public sealed record PrepareRefused(Guid MigrationId, string Reason) : IMigrationMessage;

/// <summary>
/// Destination gate -> source coordinator: the <paramref name="Chunks"/> consecutive chunks <paramref name="ChunkIndex"/>
/// .. ChunkIndex+Chunks-1 of device <paramref name="DeviceIndex"/> (<paramref name="Bytes"/> bytes together) were loaded:
/// their credit is returned, and the source may forget them (it keeps every sent chunk until then, to resend it if its
/// channel is lost). A gate loads its device's chunks in index order, so one credit always names a range; it batches
/// up to credit-batch-chunks chunks or credit-batch-interval (docs/protocol.md, "Device-state flow control").
/// Also reports the gate's buffered bytes and the load time of the range for estimates.
/// </summary>
public sealed record DeviceCredit(Guid MigrationId, int DeviceIndex, long Bytes, long ChunkIndex, long LoadTicks, long BufferedBytes, int Chunks = 1)
    : IMigrationMessage;

/// <summary>
/// Destination -> source: every channel delivered Sync(<paramref name="Iteration"/>) (the barrier opened), so every
/// page sent before those Syncs is in guest RAM: the source forgets which channel carried them.
/// </summary>
public sealed record IterationReceived(Guid MigrationId, uint Iteration) : IMigrationMessage;

/// <summary>
/// Destination -> source: connection <paramref name="Connection"/> (the number from its hello) of channel
/// <paramref name="Channel"/> was lost and its receive loop has ended.
/// It delivered every Sync up to <paramref name="DeliveredThroughIteration"/> (0 = none), so the pages it carried
/// after that may be lost; <paramref name="Devices"/> says, per device, which chunk indices the destination holds.
/// The listener accepts a new connection for the channel index from now on (docs/protocol.md "Reconnect").
/// </summary>
public sealed record ChannelResume(Guid MigrationId, int Channel, ushort Connection, uint DeliveredThroughIteration, DeviceReceipt[] Devices) : IMigrationMessage;

/// <summary>Chunk indices one device's gate holds: every index below <paramref name="Next"/>, and <paramref name="Held"/> (out of order).</summary>
public sealed record DeviceReceipt(long Next, long[] Held)
{
    public bool Holds(long index) => index < Next || Array.IndexOf(Held, index) >= 0;
}

/// <summary>Source -> destination after End on every channel: the source's digests at stop time.</summary>
/// <summary>Also carries the stopped guest's vCPU state (the workload's position), which the destination resumes from.</summary>
public sealed record SourceDigests(Guid MigrationId, IReadOnlyList<string> Ram, IReadOnlyList<string> Devices, IReadOnlyList<long> ChunksPerDevice,
    int CpuBlock = 0, long CpuPage = 0) : IMigrationMessage;

/// <summary>Destination -> source: everything received, loaded and equal to the source digests.</summary>
public sealed record DestinationVerified(Guid MigrationId, IncomingStats Stats) : IMigrationMessage;

/// <summary>Destination -> source: the incoming side failed (violation, load error, digest mismatch); it discarded everything.</summary>
public sealed record IncomingFailed(Guid MigrationId, string Reason, IncomingStats? Stats) : IMigrationMessage;

/// <summary>Source -> destination after it released ownership: resume the guest.</summary>
public sealed record CommitMigration(Guid MigrationId) : IMigrationMessage;

/// <summary>Destination -> source: the guest runs on the destination.</summary>
public sealed record GuestResumed(Guid MigrationId, string Node) : IMigrationMessage;

/// <summary>Source -> destination: give up; discard everything.</summary>
public sealed record AbortIncoming(Guid MigrationId, string Reason) : IMigrationMessage;

/// <summary>Measurements taken where the bytes are held, on the destination.</summary>
public sealed record IncomingStats(
    long PeakDeviceBufferBytes,
    long DeviceBufferBudgetBytes,
    long OutOfOrderChunks,
    IReadOnlyList<DeviceIncomingStats> Devices,
    IReadOnlyList<string> RamDigests,
    IReadOnlyList<string> DeviceDigests,
    long NormalPages,
    long ZeroPages,
    long AllocatedBytes = 0,
    double? SteadyAllocMiBPerGiB = null);

public sealed record DeviceIncomingStats(string Id, long Chunks, long Bytes, long OutOfOrderChunks, long PeakBufferedBytes, double LoadMs);
