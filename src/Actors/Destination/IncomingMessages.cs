using System.Net.Sockets;
using Akka.Actor;

namespace Migration.Actors.Destination;

// In-process messages of the destination side (they carry sockets and completion sources).

/// <summary>Listener -> incoming migration: an authenticated channel; ownership of the socket moves with it.</summary>
public sealed record ChannelAccepted(int Index, ushort Connection, Migration.Transport.Channels.IChannelIo Io) : INoSerializationVerificationNeeded;

/// <summary>Receive channel -> incoming: the channel reached Sync(iteration) and waits until Release is completed.</summary>
public sealed record SyncReached(int Channel, uint Iteration, TaskCompletionSource Release) : INoSerializationVerificationNeeded;

/// <summary>Receive channel -> incoming: End read and cross-checked.</summary>
public sealed record RecvChannelEnded(int Channel, long NormalPages, long ZeroPages, long WireBytes) : INoSerializationVerificationNeeded;

/// <summary>Receive channel -> incoming: the peer broke the protocol on the channel (corrupt, malformed, beyond credit).</summary>
public sealed record RecvChannelFailed(int Channel, string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Receive channel -> incoming: the channel's connection broke (closed, reset, idle) and its receive loop has ended;
/// it delivered every Sync up to <paramref name="DeliveredThroughIteration"/> (0 = none).
/// </summary>
public sealed record RecvChannelLost(int Channel, ushort Connection, uint DeliveredThroughIteration, string Reason, long NormalPages, long ZeroPages)
    : INoSerializationVerificationNeeded;

/// <summary>Incoming -> listener: the channel's old connection is gone; accept a new hello for the index.</summary>
public sealed record ReleaseChannel(Guid MigrationId, int Channel) : INoSerializationVerificationNeeded;

/// <summary>Incoming -> listener: accept channels of this migration proving this token.</summary>
public sealed record RegisterIncoming(Guid MigrationId, byte[] Token, int Channels, IActorRef Incoming) : INoSerializationVerificationNeeded;

/// <summary>Incoming -> listener: the migration ended; accept no more channels for it.</summary>
public sealed record UnregisterIncoming(Guid MigrationId) : INoSerializationVerificationNeeded;

/// <summary>Incoming -> node: the guest runs here now; the node's registry takes ownership of it.</summary>
public sealed record IncomingGuestRunning(Devices.Guest.GuestVm Guest, Guid MigrationId) : INoSerializationVerificationNeeded;

/// <summary>Incoming -> node: the incoming migration ended without a guest (discarded).</summary>
public sealed record IncomingDiscarded(string VmId, Guid MigrationId, string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Incoming -> node: the guest is verified but its commit did not arrive and the source has not said whether it
/// released the guest; the paused copy is kept (never discarded without the source's answer) and `vm list` shows it
/// with <paramref name="Info"/> until IncomingGuestRunning or IncomingDiscarded.
/// </summary>
public sealed record IncomingInDoubt(Guid MigrationId, Messages.GuestInfo Info) : INoSerializationVerificationNeeded;

/// <summary>RecvChannel -> IncomingMigration: the channel's receiver, whose counters the migration reads for the metrics.</summary>
public sealed record RecvChannelStarted(int Channel, Migration.Transport.Channels.PacketReceiver Receiver) : INoSerializationVerificationNeeded;

/// <summary>IncomingMigration -> node: bytes received so far (RAM pages written, device payload) and the device buffer now.</summary>
public sealed record IncomingTraffic(Guid MigrationId, string VmId, long RamBytes, long DeviceBytes, long DeviceBufferBytes, long DeviceBufferBudgetBytes)
    : INoSerializationVerificationNeeded;
