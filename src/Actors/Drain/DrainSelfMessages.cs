using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Actors.Drain;

// The messages the DrainCoordinator sends itself: results of work done off its thread (piped back: replicator reads and
// writes, asks to the nodes) and the tick of its check timer. In-process only, never serialized; only the
// coordinator's states handle them.

/// <summary>The replicated drains read at PreStart (empty if the read failed): ends the Restoring state.</summary>
internal sealed record Restored(IReadOnlyList<DrainStatus> Drains) : INoSerializationVerificationNeeded;

/// <summary>A StartDrain's node is cordoned and its guests listed (<see cref="Guests"/>), or that failed (<see cref="Error"/>).</summary>
internal sealed record DrainPrepared(StartDrain Request, IActorRef ReplyTo, GuestList? Guests, string? Error) : INoSerializationVerificationNeeded;

/// <summary>The capacities of the nodes that answered (<see cref="DrainNodes.Capacities"/>): what the book plans with.</summary>
internal sealed record CapacitySnapshot(IReadOnlyList<NodeCapacity> Nodes) : INoSerializationVerificationNeeded;

/// <summary>A source's answer to a StartMigration the coordinator sent for <see cref="Start"/> (or a CommandFailed if none came).</summary>
internal sealed record StartReply(DrainStart Start, object Reply) : INoSerializationVerificationNeeded;

/// <summary>The request context of the write that records <see cref="Starts"/>: they are sent when it is answered.</summary>
internal sealed record StartsRecorded(IReadOnlyList<DrainStart> Starts) : INoSerializationVerificationNeeded;

/// <summary>A drain's node listed again once every guest of the drain ended (<see cref="Guests"/> null if it did not answer).</summary>
internal sealed record CloseCheck(Guid DrainId, GuestList? Guests) : INoSerializationVerificationNeeded;

/// <summary>Tick of the periodic check (every check-interval).</summary>
internal sealed class CheckTick : INoSerializationVerificationNeeded
{
    public static readonly CheckTick Instance = new();
}
