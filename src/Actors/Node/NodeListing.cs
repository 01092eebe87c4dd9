using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>The answer to GetNodes: the cluster's hypervisor members as this node's cluster state shows them (a pure read).</summary>
internal static class NodeListing
{
    public static NodeList Of(ActorSystem system)
    {
        var state = Akka.Cluster.Cluster.Get(system).State;
        return new NodeList(state.Members
            .Where(m => m.HasRole("hypervisor"))
            .Select(m => new NodeInfo(
                m.Roles.FirstOrDefault(r => r.StartsWith(NodeHost.NameRolePrefix, StringComparison.Ordinal))?[NodeHost.NameRolePrefix.Length..] ?? m.Address.ToString(),
                m.Address.ToString(),
                m.Status.ToString(),
                !state.Unreachable.Contains(m),
                m.Roles.ToArray()))
            .ToArray());
    }
}
