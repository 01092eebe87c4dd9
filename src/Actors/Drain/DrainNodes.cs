using Akka.Actor;
using Akka.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Node;

namespace Migration.Actors.Drain;

/// <summary>
/// The hypervisor nodes as the drain coordinator sees them: which members are Up and reachable (a drain's node and its
/// targets must be), whether a drain's node is still a member, the node actor at an address, and every node's capacity
/// at once. No state of its own: it reads Akka.Cluster's state and asks the nodes.
/// Owned by the <see cref="DrainCoordinator"/> and called on its thread only: <see cref="NodeOf"/> resolves through the
/// actor's context, so an async caller resolves its nodes before its first await (as <see cref="Capacities"/> does).
/// </summary>
internal sealed class DrainNodes(IActorContext context)
{
    /// <summary>How long the coordinator waits for a node's answer (for a StartMigration, three times this).</summary>
    public static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(context.System);

    /// <summary>Addresses of the Up, reachable hypervisor members.</summary>
    public HashSet<string> HypervisorMembers()
    {
        var state = _cluster.State;
        return state.Members.Where(m => m.HasRole("hypervisor") && m.Status == MemberStatus.Up && !state.Unreachable.Contains(m))
            .Select(m => m.Address.ToString()).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>True while <paramref name="address"/> is a member that has not been downed or removed (unreachable counts).</summary>
    public bool IsMember(string address) => _cluster.State.Members.Any(m =>
        m.Address.ToString() == address && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining or MemberStatus.Leaving);

    /// <summary>The <see cref="HypervisorNode"/> actor of the node at <paramref name="address"/>.</summary>
    public ActorSelection NodeOf(string address) => context.ActorSelection($"{address.TrimEnd('/')}/user/{HypervisorNode.Name}");

    /// <summary>The capacities of <paramref name="members"/> that answered in time (an unreachable node is left out).</summary>
    public async Task<IReadOnlyList<NodeCapacity>> Capacities(IReadOnlyCollection<string> members)
    {
        var answers = await Task.WhenAll(members.Select(async m =>
        {
            try
            {
                return await NodeOf(m).Ask<NodeCapacity>(GetCapacity.Instance, AskTimeout).ConfigureAwait(false);
            }
            catch (Exception)
            {
                return null; // an unreachable node is no target
            }
        })).ConfigureAwait(false);
        return answers.OfType<NodeCapacity>().ToArray();
    }
}
