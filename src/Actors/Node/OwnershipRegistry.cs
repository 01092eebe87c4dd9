using Akka.Actor;
using Akka.DistributedData;
using Migration.Actors.Ownership;

namespace Migration.Actors.Node;

/// <summary>
/// The cluster's answer to "where does this guest run?" (GetOwners, the CLUSTER RECORD column of `vm list`): a view of
/// the majority-confirmed ownership record (<see cref="OwnershipRecord"/>, key guest-epochs), guest id -> the owner of
/// its newest epoch. One source of truth: there is no second map to disagree with the record (the former guest-owners
/// map, written locally by whichever node ran the guest, is gone). Read from this node's local replica, so right after a
/// hand-over it may still name the previous owner until gossip arrives (informational; nothing acts on it).
/// Used from the HypervisorNode's thread.
/// </summary>
public sealed class OwnershipRegistry
{
    private readonly IActorRef _replicator;

    public OwnershipRegistry(ActorSystem system)
    {
        _replicator = DistributedData.Get(system).Replicator;
    }

    /// <summary>Reads the local replica; the reply (GetSuccess / NotFound) goes to <paramref name="replyTo"/>.</summary>
    public void Read(IActorRef replyTo, object? context) =>
        _replicator.Tell(Dsl.Get(OwnershipRecord.Key, ReadLocal.Instance, context), replyTo);

    /// <summary>Guest id -> owner node address of the newest epoch, from a reply to <see cref="Read"/> (malformed entries skipped).</summary>
    public static Dictionary<string, string> Owners(GetSuccess reply) =>
        reply.Get(OwnershipRecord.Key).Entries
            .Select(kv => (kv.Key, Epoch: GuestEpoch.TryParse(kv.Value, out var e, out _) ? e : GuestEpoch.None))
            .Where(x => !x.Epoch.IsNone)
            .ToDictionary(x => x.Key, x => x.Epoch.Owner, StringComparer.Ordinal);
}
