using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

// The MigrationCoordinator's messages to itself (timers, piped results): never leave this node, so they are exempt
// from serialization checks. Internal: only the coordinator and the collaborators it owns send or handle them.

/// <summary>A phase took too long (the timer "phase"); Committing answers it with a record read instead.</summary>
internal sealed record PhaseTimeout(string Phase) : INoSerializationVerificationNeeded;

internal sealed record ProgressTick : INoSerializationVerificationNeeded
{
    public static readonly ProgressTick Instance = new();
}

/// <summary>The min-iteration-time wait is over: begin the next precopy iteration.</summary>
internal sealed record NextIteration : INoSerializationVerificationNeeded
{
    public static readonly NextIteration Instance = new();
}

/// <summary>The paused guest's RAM digests, computed on the thread pool.</summary>
internal sealed record RamDigestsReady(string[] Digests) : INoSerializationVerificationNeeded;

/// <summary>The grace after a channel failure is over without the destination's IncomingFailed: fail with the socket error.</summary>
internal sealed record ChannelFailureGrace : INoSerializationVerificationNeeded
{
    public static readonly ChannelFailureGrace Instance = new();
}

/// <summary>Fault injection hold=commit is over: send CommitMigration now.</summary>
internal sealed record HoldCommitOver : INoSerializationVerificationNeeded
{
    public static readonly HoldCommitOver Instance = new();
}

/// <summary>The destination's incoming migration stopped and no IncomingFailed said why within the grace.</summary>
internal sealed record PeerGraceOver(string Why) : INoSerializationVerificationNeeded;

/// <summary>Retry the take-back claim (the last one found no majority).</summary>
internal sealed record RetryClaim : INoSerializationVerificationNeeded
{
    public static readonly RetryClaim Instance = new();
}

/// <summary>migration.device-abort-timeout is over before every saver confirmed SaveAborted.</summary>
internal sealed record DeviceAbortTimedOut : INoSerializationVerificationNeeded
{
    public static readonly DeviceAbortTimedOut Instance = new();
}

/// <summary>Coordinator -> node: the destination verified; ownership moves to it.</summary>
public sealed record GuestHandedOver(string VmId, Guid MigrationId) : INoSerializationVerificationNeeded;

/// <summary>Coordinator -> node: the migration ended (HandedOver = the guest now belongs to the destination).</summary>
public sealed record MigrationEnded(string VmId, Guid MigrationId, MigrationReport Report, bool HandedOver) : INoSerializationVerificationNeeded;

/// <summary>Fault injection (tests, CLI): kill one channel's connection.</summary>
public sealed record InjectChannelKill(Guid MigrationId, int Channel) : Messages.IMigrationMessage;
