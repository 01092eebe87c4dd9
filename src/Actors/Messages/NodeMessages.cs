using Migration.Actors.Settings;
using Migration.Devices.Guest;

namespace Migration.Actors.Messages;

// Commands a client (demo, CLI, another node) sends to a node's HypervisorNode actor at /user/node.
// Every command is answered: with the reply named beside it, or with CommandFailed.

/// <summary>Create and start a guest on this node. Reply: GuestCreated.</summary>
public sealed record CreateGuest(GuestSpec Spec) : IMigrationMessage;

public sealed record GuestCreated(string VmId, string Node) : IMigrationMessage;

/// <summary>List the guests this node owns. Reply: GuestList.</summary>
public sealed record ListGuests : IMigrationMessage
{
    public static readonly ListGuests Instance = new();
}

/// <summary>A guest as its node sees it; <paramref name="ThrottlePercent"/> is its auto-converge throttle now (0 = none).</summary>
public sealed record GuestInfo(string VmId, string Node, string State, long RamBytes, int Devices, string? MigrationId, int ThrottlePercent = 0);

/// <summary>The guests of a node, and its pool of touched guest memory (null from a node without one).</summary>
public sealed record GuestList(string Node, IReadOnlyList<GuestInfo> Guests, MemoryPoolInfo? Pool = null) : IMigrationMessage;

/// <summary>A node's guest-memory pool (GuestMemoryPool): bytes held, ready for reuse (out of quarantine), bound, reused and populated so far.</summary>
public sealed record MemoryPoolInfo(long HeldBytes, long ReadyBytes, long MaxBytes, long ReusedBytes, long PopulatedBytes);

/// <summary>Read a guest's RAM and device digests (after stopping nothing; for tests). Reply: GuestDigests.</summary>
public sealed record GetGuestDigests(string VmId) : IMigrationMessage;

public sealed record GuestDigests(string VmId, IReadOnlyList<string> Ram, IReadOnlyList<string> Devices, bool WorkloadPatternOk, string PatternMessage) : IMigrationMessage;

/// <summary>
/// Migrate a guest of this node to the node at <paramref name="DestinationNode"/> (an Akka address such as
/// akka.tcp://mig@127.0.0.1:4054). Progress and the final MigrationFinished go to <paramref name="Subscriber"/>
/// if given. Reply: MigrationStarted.
/// <paramref name="MigrationId"/>, when given, is the caller's id for this migration and makes the request idempotent:
/// asked again with the same id for the same guest (a drain coordinator that took over and does not know whether its
/// predecessor's request arrived), the node answers MigrationStarted for the migration it already has (running or
/// ended) and subscribes <paramref name="Subscriber"/> to it; the same id for another guest is refused. Null: the
/// node picks a new id.
/// </summary>
public sealed record StartMigration(string VmId, string DestinationNode, MigrationSettings Settings, Akka.Actor.IActorRef? Subscriber, Guid? MigrationId = null) : IMigrationMessage;

public sealed record MigrationStarted(Guid MigrationId, string VmId) : IMigrationMessage;

/// <summary>Cancel a running migration (source side). Reply: CancelAccepted; the subscriber then gets MigrationFinished(cancelled).</summary>
public sealed record CancelMigration(Guid MigrationId) : IMigrationMessage;

public sealed record CancelAccepted(Guid MigrationId) : IMigrationMessage;

/// <summary>Subscribe to a migration's progress. Reply: the latest MigrationProgress, then updates.</summary>
public sealed record SubscribeMigration(Guid MigrationId, Akka.Actor.IActorRef Subscriber) : IMigrationMessage;

/// <summary>Ask any node for the cluster's hypervisor nodes. Reply: NodeList.</summary>
public sealed record GetNodes : IMigrationMessage
{
    public static readonly GetNodes Instance = new();
}

/// <summary>A cluster member as seen by the node that answered.</summary>
public sealed record NodeInfo(string Name, string Address, string Status, bool Reachable, IReadOnlyList<string> Roles);

public sealed record NodeList(IReadOnlyList<NodeInfo> Nodes) : IMigrationMessage;

/// <summary>Ask a node for the migrations it runs as source (and those that ended). Reply: MigrationList.</summary>
public sealed record GetMigrations : IMigrationMessage
{
    public static readonly GetMigrations Instance = new();
}

/// <summary>One migration known to a source node: running (latest progress) or ended (report).</summary>
public sealed record MigrationInfo(Guid MigrationId, string VmId, string Source, string Destination, string State, MigrationProgress? Progress, MigrationReport? Report);

public sealed record MigrationList(IReadOnlyList<MigrationInfo> Migrations) : IMigrationMessage;

/// <summary>Ask any node for the cluster's replicated guest -> node record. Reply: GuestOwners.</summary>
public sealed record GetOwners : IMigrationMessage
{
    public static readonly GetOwners Instance = new();
}

/// <summary>Guest id -> address of the node recorded as running it (Akka.DistributedData, eventually consistent).</summary>
public sealed record GuestOwners(Dictionary<string, string> Owners) : IMigrationMessage;
