using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;

namespace Migration.Actors.Drain;

/// <summary>
/// The cluster's set of cordoned nodes (Akka addresses): an Akka.DistributedData ORSet, replicated to every member, so
/// it survives the drain coordinator (a cluster singleton) moving to another node. Written only by the coordinator
/// (WriteAll, so every reachable node holds it before the operator gets the answer); read by every HypervisorNode
/// through a subscription (it then refuses incoming migrations and new guests).
/// Thread-safe to call from any actor (it only sends messages to the local replicator).
/// </summary>
public sealed class CordonRegistry
{
    public static readonly ORSetKey<string> Key = new("cordoned-nodes");

    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(5);
    private readonly IActorRef _replicator;
    private readonly UniqueAddress _self;

    public CordonRegistry(ActorSystem system)
    {
        _replicator = DistributedData.Get(system).Replicator;
        _self = Akka.Cluster.Cluster.Get(system).SelfUniqueAddress;
    }

    /// <summary>
    /// Adds or removes <paramref name="node"/>. Completes when every reachable replica has it, or after the write timeout
    /// (the local replica has it then, and gossip spreads it): either way the change is made.
    /// </summary>
    public Task SetAsync(string node, bool cordoned)
    {
        var update = Dsl.Update(Key, ORSet<string>.Empty, new WriteAll(WriteTimeout),
            s => cordoned ? s.Add(_self, node) : s.Remove(_self, node));
        return _replicator.Ask<IUpdateResponse>(update, WriteTimeout + TimeSpan.FromSeconds(2));
    }

    /// <summary>The local replica's set (empty if none was written yet).</summary>
    public async Task<IReadOnlyList<string>> ReadAsync()
    {
        var reply = await _replicator.Ask<IGetResponse>(Dsl.Get(Key, ReadLocal.Instance), TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        return reply is GetSuccess g ? g.Get(Key).Elements.OrderBy(x => x, StringComparer.Ordinal).ToArray() : [];
    }

    /// <summary><paramref name="subscriber"/> gets Changed messages for the set (and the current value at once).</summary>
    public void Subscribe(IActorRef subscriber) => _replicator.Tell(Dsl.Subscribe(Key, subscriber));
}
