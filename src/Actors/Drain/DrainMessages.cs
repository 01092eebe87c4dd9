using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Actors.Drain;

// Commands an operator (the CLI) sends to the drain coordinator, the cluster singleton reached through every
// hypervisor node's proxy at /user/drain. Every command is answered: with the reply named beside it, or CommandFailed.

/// <summary>
/// Cordon the node at <paramref name="Node"/> (Akka address) and move every guest it runs to other nodes, at most
/// <paramref name="MaxParallel"/> at a time; only to <paramref name="Targets"/> (addresses) if any are given.
/// <paramref name="Settings"/> are the migrations' parameters. Reply: DrainStarted (after the cordon is recorded).
/// </summary>
public sealed record StartDrain(string Node, int MaxParallel, IReadOnlyList<string> Targets, MigrationSettings Settings) : IMigrationMessage;

public sealed record DrainStarted(DrainStatus Drain) : IMigrationMessage;

/// <summary>Lift the cordon of <paramref name="Node"/>; a drain of it still running starts no further migrations. Reply: Uncordoned.</summary>
public sealed record Uncordon(string Node) : IMigrationMessage;

/// <summary><paramref name="CancelledGuests"/>: guests of a running drain that were still pending and stay where they are.</summary>
public sealed record Uncordoned(string Node, int CancelledGuests) : IMigrationMessage;

/// <summary>Ask for every drain (running and ended) and the cordoned nodes. Reply: DrainList.</summary>
public sealed record GetDrains : IMigrationMessage
{
    public static readonly GetDrains Instance = new();
}

public sealed record DrainList(IReadOnlyList<DrainStatus> Drains, IReadOnlyList<string> Cordoned) : IMigrationMessage;

/// <summary>
/// One drain as the coordinator records it (also the value replicated in Akka.DistributedData, so a coordinator that
/// moves to another node carries on). Immutable: every change makes a new record.
/// </summary>
public sealed record DrainStatus(
    Guid DrainId,
    string Node,
    int MaxParallel,
    IReadOnlyList<string> Targets,
    MigrationSettings Settings,
    string State,
    DateTime StartedUtc,
    DateTime? EndedUtc,
    IReadOnlyList<DrainGuest> Guests) : IMigrationMessage
{
    public const string Running = "running";
    public const string Done = "done";
    public const string Failed = "failed";

    public bool IsRunning => State == Running;
}

/// <summary>One guest of a drain: its state, where it goes, and each attempt with its start and end time.</summary>
public sealed record DrainGuest(
    string VmId,
    long RamBytes,
    string State,
    string? Target,
    Guid? MigrationId,
    double Percent,
    string? Error,
    IReadOnlyList<DrainAttempt> Attempts) : IMigrationMessage
{
    public const string Pending = "pending";
    /// <summary>StartMigration sent, MigrationStarted not yet back: counts against the limits like a running migration.</summary>
    public const string Starting = "starting";
    public const string Migrating = "migrating";
    public const string Done = "done";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public bool InFlight => State is Starting or Migrating;

    public bool Ended => State is Done or Failed or Cancelled;
}

/// <summary>One migration attempt of a drained guest. <paramref name="Outcome"/> is null while it runs.</summary>
public sealed record DrainAttempt(string Target, Guid? MigrationId, DateTime StartedUtc, DateTime? EndedUtc, string? Outcome) : IMigrationMessage;

/// <summary>Ask a node for its guest memory capacity and use. Reply: NodeCapacity.</summary>
public sealed record GetCapacity : IMigrationMessage
{
    public static readonly GetCapacity Instance = new();
}

/// <summary>
/// A node's guest memory: <paramref name="UsedBytes"/> counts its guests and the migrations coming in
/// (<paramref name="Incoming"/>, by migration id, so a placement does not count them twice); whether it is cordoned.
/// </summary>
public sealed record NodeCapacity(string Node, long CapacityBytes, long UsedBytes, IReadOnlyList<Guid> Incoming, bool Cordoned) : IMigrationMessage
{
    public long FreeBytes => Math.Max(0, CapacityBytes - UsedBytes);
}
