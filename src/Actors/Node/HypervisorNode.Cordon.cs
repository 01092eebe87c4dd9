using Akka.Actor;
using Akka.DistributedData;
using Migration.Actors.Drain;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>
/// The node's part in host drains: its view of the cluster's cordoned nodes (a subscription to
/// <see cref="CordonRegistry"/>; a cordoned node refuses incoming migrations and new guests, and no migration is started
/// towards a cordoned node), and its guest memory capacity and use for the drain's placement (GetCapacity).
/// Touched only on the node actor's thread.
/// </summary>
public sealed partial class HypervisorNode
{
    /// <summary>Cordoned node addresses as last replicated to this node.</summary>
    private IReadOnlySet<string> _cordoned = new HashSet<string>();

    private void ReceiveCordon()
    {
        Receive<Changed>(c => c.Key.Equals(CordonRegistry.Key), c => _cordoned = c.Get(CordonRegistry.Key).Elements.ToHashSet(StringComparer.Ordinal));
        Receive<GetCapacity>(_ => Sender.Tell(new NodeCapacity(_nodeName, MemoryCapacity, MemoryUsed(), _incoming.Keys.ToArray(), IsCordoned(_nodeName))));
    }

    private void SubscribeCordon() => new CordonRegistry(Context.System).Subscribe(Self);

    private bool IsCordoned(string node) => _cordoned.Contains(node.TrimEnd('/'));

    /// <summary>The refusal for a guest or migration coming to this node while it is cordoned, else null.</summary>
    private string? CordonRefusal(string what) =>
        IsCordoned(_nodeName) ? $"node {_nodeName} is cordoned (being drained): it takes no {what}; `uncordon` lifts it" : null;

    /// <summary>Guest RAM this node holds: its guests, incoming guests, and stopped copies handed over but not yet freed (custody).</summary>
    private long MemoryUsed() => _guests.Values.Sum(g => g.Guest.Spec.RamBytes) + _incoming.Values.Sum(i => i.RamBytes) +
                                 _handedOver.Values.Sum(g => g.Spec.RamBytes);
}
