using Akka.Actor;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>
/// What the node does when one of its migration actors dies of an internal error (a bug, or Kill) instead of ending
/// normally: the guest must still run on exactly one node. Provides the node's supervisor strategy (stop, never restart;
/// the channel listener is resumed) and handles the node's Terminated messages. Called on the node's thread only
/// (supervision is a system message to the parent, handled on its thread too).
/// </summary>
internal sealed class MigrationChildFailures(IActorContext context, ILoggingAdapter log, string nodeName, Func<IActorRef> listener, GuestStore store,
    GuestRegistry guests, IncomingMigrations incoming, OutgoingMigrations outgoing, MigrationHistory history, GuestReclaim reclaim, CustodyKeeper custody)
{
    private readonly Func<IActorRef> _listener = listener; // set in the node's PreStart: read when asked
    private readonly Dictionary<IActorRef, Exception> _failures = new();

    /// <summary>
    /// A migration actor that throws is stopped, not restarted: a restart would start the migration over with half its
    /// state (a paused guest, channels gone) and the same id. The node watches it and cleans up (<see cref="OnTerminated"/>).
    /// The channel listener is resumed: it owns the node's listening socket, and its registry stays valid.
    /// </summary>
    public SupervisorStrategy Strategy() => new ChildFailureStrategy(this);

    /// <summary>A watched child (a coordinator or an incoming migration) terminated; after its normal end it is no longer known here.</summary>
    public void OnTerminated(Terminated t)
    {
        _failures.Remove(t.ActorRef, out var cause);
        var why = cause is null ? "it stopped unexpectedly" : $"internal error: {cause.GetType().Name}: {cause.Message}";
        foreach (var id in outgoing.CoordinatedBy(t.ActorRef))
        {
            OnCoordinatorDied(id, why);
        }

        foreach (var id in incoming.ForgetDiscardedBy(t.ActorRef))
        {
            _listener().Tell(new UnregisterIncoming(id)); // a superseded copy: its source has moved on, nobody waits for its result
        }

        foreach (var (id, entry) in incoming.RunBy(t.ActorRef))
        {
            log.Error("incoming migration {0} of {1} ended without a result ({2}); its guest was discarded", id, entry.VmId, why);
            incoming.End(id);
            _listener().Tell(new UnregisterIncoming(id));
            entry.Source.Tell(new IncomingFailed(id, $"the destination's incoming migration ended without a result ({why}); it discarded the guest", null));
        }
    }

    /// <summary>
    /// The coordinator died before MigrationEnded. Before the handover the guest is still ours as far as this node knows,
    /// but a destination may have verified it and claimed a newer epoch meanwhile (its DestinationVerified reached the
    /// dead coordinator), so a stopped guest resumes only through the record (<see cref="GuestReclaim.Begin"/>: run if a
    /// majority confirms a new epoch naming this node, discard if the record names the destination, paused while
    /// undecided); the report and the destination's AbortIncoming follow that decision. A guest still running (precopy:
    /// never stopped) keeps running at once: no destination can have verified a guest that never stopped. After the
    /// handover the destination resolves the missing commit by asking this node (HandedOver), and this node keeps the
    /// stopped copy until <see cref="HandoverCustody"/> says the destination runs it or is gone without it (then it resumes here).
    /// </summary>
    private void OnCoordinatorDied(Guid id, string why)
    {
        var (vmId, destination) = history.TryGetStarted(id, out var s) ? s : ("?", "");
        var reason = $"migration {id} of {vmId}: the coordinator ended without a result ({why})";
        outgoing.CoordinatorDied(id);
        if (guests.IsHandedOver(id))
        {
            custody.Begin(id, vmId, destination, reason);
            return;
        }

        if (guests.TryGet(vmId, out var stopped) && stopped.MigrationId == id && !stopped.Guest.Workload.IsRunning)
        {
            log.Error("{0}; the stopped guest stays paused on {1} until the ownership record says who runs it", reason, nodeName);
            reclaim.Begin(stopped.Guest, id, destination, afterRestart: false, reason);
            return;
        }

        if (guests.TryGet(vmId, out var entry) && entry.MigrationId == id)
        {
            entry.Guest.Workload.Resume();
            store.MigrationEnded(vmId, id);
            entry.MigrationId = null;
            entry.State = "running";
        }

        // Without a started record the destination is unknown: "" would address this node's own /user/node.
        if (destination.Length > 0)
        {
            context.ActorSelection($"{destination.TrimEnd('/')}/user/node").Tell(new AbortIncoming(id, reason));
        }

        log.Error("{0}; the guest keeps running on {1}", reason, nodeName);
        outgoing.EndWithoutCoordinator(id, vmId, destination, previousIncarnation: false, handedOver: false, reason);
    }

    private sealed class ChildFailureStrategy(MigrationChildFailures failures) : OneForOneStrategy(_ => Directive.Stop)
    {
        /// <summary>Runs on the node's thread (supervision is a system message to the parent).</summary>
        protected override Directive Handle(IActorRef child, Exception exception)
        {
            if (child.Equals(failures._listener()))
            {
                return Directive.Resume;
            }

            failures._failures[child] = exception;
            return Directive.Stop;
        }
    }
}
