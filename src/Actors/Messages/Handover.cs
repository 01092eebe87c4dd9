namespace Migration.Actors.Messages;

// Resolving a lost commit (docs/protocol.md, "Lost commit"; docs/architecture.md, "Verify and commit"): a destination
// that verified the guest but received no CommitMigration asks the source node what the source decided, instead of
// guessing. The source node is the authority: it alone knows whether it released the guest.

/// <summary>
/// Destination (IncomingMigration) -> source node (/user/node on the source coordinator's address): did you release
/// the guest of <paramref name="MigrationId"/>? Reply: <see cref="HandoverStatus"/>. A pure read: it may be sent any
/// number of times and changes nothing on the source.
/// </summary>
public sealed record QueryHandover(Guid MigrationId) : IMigrationMessage;

/// <summary>Source node -> destination: what the source decided about the guest of <paramref name="MigrationId"/>.</summary>
public sealed record HandoverStatus(Guid MigrationId, HandoverDecision Decision) : IMigrationMessage;

/// <summary>The source node's answer to <see cref="QueryHandover"/>. Only HandedOver and KeptBySource are final.</summary>
public enum HandoverDecision
{
    /// <summary>Never sent: a default value is not an answer.</summary>
    Invalid = 0,

    /// <summary>The migration still runs on the source and has not released the guest yet (before DestinationVerified
    /// was processed there): the source still owns the guest; ask again. Every such phase has its own timeout, after
    /// which the answer becomes KeptBySource.</summary>
    InProgress = 1,

    /// <summary>The source released the guest and will never run it again: the destination must resume it.</summary>
    HandedOver = 2,

    /// <summary>The migration ended on the source without releasing the guest (failed, cancelled, timed out before the
    /// hand-over): the guest runs on the source; the destination must discard its copy.</summary>
    KeptBySource = 3,

    /// <summary>This node (in this incarnation) never ran the migration: the answer says nothing about the guest.</summary>
    Unknown = 4,
}
