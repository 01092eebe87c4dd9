using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Actors.Drain;

/// <summary>
/// The drain coordinator's checks of a StartDrain before it cordons anything: each refusal is answered here, with the
/// same replies and reasons as always (codes unknown-node, bad-settings, already-draining); what passes is prepared by
/// the coordinator. Reads the coordinator's book and its set of nodes whose drain is being prepared (both owned by the
/// <see cref="DrainCoordinator"/>). Called on the coordinator's thread only, with the message's sender.
/// </summary>
internal sealed class StartDrainChecks(DrainNodes nodes, DrainBook book, IReadOnlySet<string> preparing)
{
    /// <summary>True if the StartDrain was refused here (<paramref name="sender"/> was told CommandFailed).</summary>
    public bool Refused(StartDrain s, IActorRef sender)
    {
        var members = nodes.HypervisorMembers();
        string? refusal = s.MaxParallel is < 1 or > 64 ? $"--max-parallel {s.MaxParallel}: expected 1..64"
            : !members.Contains(s.Node) ? $"unknown node {s.Node}: not an Up hypervisor member"
            : s.Targets.FirstOrDefault(t => !members.Contains(t)) is { } badTarget ? $"unknown target node {badTarget}: not an Up hypervisor member"
            : s.Targets.Contains(s.Node) ? $"--to {s.Node}: a node cannot take guests from its own drain"
            : null;
        if (refusal is null)
        {
            try
            {
                s.Settings.Validate();
            }
            catch (ArgumentException e)
            {
                refusal = e.Message;
            }
        }

        if (refusal is not null)
        {
            sender.Tell(new CommandFailed(refusal, refusal.StartsWith("unknown", StringComparison.Ordinal) ? "unknown-node" : "bad-settings"));
            return true;
        }

        var running = book.Active(s.Node);
        if (running is not null || preparing.Contains(s.Node))
        {
            sender.Tell(new CommandFailed($"node {s.Node} is already being drained{(running is null ? "" : $" (drain {running.DrainId})")}", "already-draining"));
            return true;
        }

        return false;
    }
}
