using Akka.Actor;
using Akka.DistributedData;
using Migration.Actors.Drain;

namespace Migration.Actors.Node;

/// <summary>
/// The node's view of the cluster's cordoned nodes for host drains: a subscription to <see cref="CordonRegistry"/>
/// (its Changed messages come to the node, which hands them here). A cordoned node refuses incoming migrations and new
/// guests, and no migration is started towards a cordoned node. Called on the node's thread only.
/// </summary>
internal sealed class CordonView(string nodeName)
{
    /// <summary>Cordoned node addresses as last replicated to this node.</summary>
    private IReadOnlySet<string> _cordoned = new HashSet<string>();

    /// <summary>Subscribes <paramref name="node"/> to the cordon set (the node's PreStart).</summary>
    public static void Subscribe(ActorSystem system, IActorRef node) => new CordonRegistry(system).Subscribe(node);

    /// <summary>True for a Changed message of the cordon set.</summary>
    public static bool IsCordonChange(Changed c) => c.Key.Equals(CordonRegistry.Key);

    public void OnChanged(Changed c) => _cordoned = c.Get(CordonRegistry.Key).Elements.ToHashSet(StringComparer.Ordinal);

    public bool IsCordoned(string node) => _cordoned.Contains(node.TrimEnd('/'));

    /// <summary>True if this node is cordoned.</summary>
    public bool SelfCordoned => IsCordoned(nodeName);

    /// <summary>The refusal for a guest or migration coming to this node while it is cordoned, else null.</summary>
    public string? Refusal(string what) =>
        SelfCordoned ? $"node {nodeName} is cordoned (being drained): it takes no {what}; `uncordon` lifts it" : null;
}
