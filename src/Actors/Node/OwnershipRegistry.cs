using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;

namespace Migration.Actors.Node;

/// <summary>
/// The cluster's replicated record of which node runs each guest: an Akka.DistributedData LWWDictionary
/// (guest id -> node address), written by the node that owns the guest — on create, and by the destination when a
/// migrated guest resumes there (the source never writes on hand-over, so the destination's entry is the latest).
/// A node's own registry is the authority for what it runs; this record lets any node and the CLI answer
/// "where does this guest run?" and lets `vm list` flag a disagreement after a failure.
/// Used from the HypervisorNode's thread; updates are fire-and-forget with WriteMajority semantics relaxed to
/// local writes plus gossip (a partitioned node still records what it runs).
/// </summary>
public sealed class OwnershipRegistry
{
    public static readonly LWWDictionaryKey<string, string> Key = new("guest-owners");

    private readonly IActorRef _replicator;
    private readonly UniqueAddress _self;

    public OwnershipRegistry(ActorSystem system)
    {
        _replicator = DistributedData.Get(system).Replicator;
        _self = Akka.Cluster.Cluster.Get(system).SelfUniqueAddress;
    }

    /// <summary>Records that <paramref name="vmId"/> runs on <paramref name="owner"/>.</summary>
    public void SetOwner(string vmId, string owner) =>
        _replicator.Tell(Dsl.Update(Key, LWWDictionary<string, string>.Empty, WriteLocal.Instance,
            d => d.SetItem(_self, vmId, owner)));

    /// <summary>Reads the local replica; the reply (GetSuccess / NotFound) goes to <paramref name="replyTo"/>.</summary>
    public void Read(IActorRef replyTo, object? context) =>
        _replicator.Tell(Dsl.Get(Key, ReadLocal.Instance, context), replyTo);
}
