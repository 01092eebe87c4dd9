using Akka.Actor;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Actors.Node;

/// <summary>Where this node's channel listener listens: set by the node in PreStart, before any prepare can arrive.</summary>
internal sealed record ListenerEndpoint(IActorRef Listener, string Host, int Port, bool Tls);

/// <summary>
/// The node's side of the migrations coming in (the destination role): admits a PrepareIncoming, or has it wait
/// behind the copy it supersedes (<see cref="IncomingMigrations.DeferBehindSuperseded"/>), creates and watches its
/// <see cref="IncomingMigration"/> child, forwards an AbortIncoming only from the migration's source, and books the end
/// of each (its guest runs here, or was discarded). Children that die without a result are
/// <see cref="MigrationChildFailures"/>' business; the node hands every such end here too, since a waiting prepare may
/// go ahead then. Called on the <see cref="HypervisorNode"/>'s thread only.
/// </summary>
internal sealed class IncomingReception(IActorContext context, ILoggingAdapter log, string nodeName, NodeCommandChecks checks,
    IncomingMigrations incoming, GuestRegistry guests, GuestStore store, NodeMetricsFeed metrics, Func<ListenerEndpoint> endpoint)
{
    public void OnPrepare(PrepareIncoming p, IActorRef sender)
    {
        if (checks.NotAdmittedNow(p, sender, out var effective))
        {
            return;
        }

        SerializationWarmup.WarmBeforeMigration(context.System, context.Self, log);
        var at = endpoint();
        var actor = context.ActorOf(IncomingMigration.Props(p, effective, at.Listener, at.Host, at.Port, nodeName, at.Tls), $"incoming-{p.MigrationId:N}");
        incoming.Add(p.MigrationId, new IncomingEntry(p.Spec.Id, actor, p.Spec.RamBytes, p.Source));
        context.Watch(actor);
    }

    /// <summary>
    /// Forwards an abort to its incoming migration if it comes from that migration's source node (its coordinator or node
    /// actor) or from this node's own actors; anyone else (another member, a CLI, a sender-less message) gets
    /// CommandFailed and the copy lives on. A prepare still waiting behind the copy it supersedes is taken back. An
    /// abort for a migration not held here is ignored (it may have ended).
    /// </summary>
    public void OnAbort(AbortIncoming a, IActorRef from)
    {
        var source = incoming.TryGet(a.MigrationId, out var inc) ? inc.Source : incoming.DeferredSource(a.MigrationId);
        if (source is null)
        {
            return;
        }

        // IsNobody covers dead letters too: a sender-less message from a remote system arrives from this system's dead letters.
        var allowed = !from.IsNobody()
            && (from.Path.Address.HasLocalScope || from.Path.Address.Equals(source.Path.Address));
        if (!allowed)
        {
            log.Warning("refused an abort of incoming migration {0} from {1}: only its source node {2} may abort it", a.MigrationId, from, source.Path.Address);
            from.Tell(new CommandFailed($"abort of incoming migration {a.MigrationId} from {from.Path.Address}: only its source node {source.Path.Address} may abort it", "not-authorized"));
            return;
        }

        if (inc is not null)
        {
            inc.Actor.Forward(a);
        }
        else if (incoming.CancelDeferred(a.MigrationId))
        {
            log.Info("incoming migration {0}: aborted by its source while it waited for the copy it supersedes ({1})", a.MigrationId, a.Reason);
        }
    }

    /// <summary>The verified guest resumed here: it enters the registry and the store.</summary>
    public void OnRunning(IncomingGuestRunning r)
    {
        incoming.End(r.MigrationId, guestRunsHere: true);
        guests.Run(r.Guest);
        store.Add(r.Guest);
        log.Info("guest {0} now runs on {1} (migration {2})", r.Guest.Id, nodeName, r.MigrationId);
        metrics.IncomingEnded(r.MigrationId, "completed");
        ReleaseDeferredPrepares(); // a prepare of this guest waiting behind this copy is refused now: the guest runs here
    }

    public void OnDiscarded(IncomingDiscarded d)
    {
        incoming.End(d.MigrationId);
        metrics.IncomingEnded(d.MigrationId, "discarded", d.Reason);
        ReleaseDeferredPrepares();
    }

    /// <summary>A watched child terminated (after MigrationChildFailures booked it): a prepare waiting for it may go ahead.</summary>
    public void OnChildTerminated() => ReleaseDeferredPrepares();

    /// <summary>
    /// Prepares that waited for a superseded copy to end are handled again at once, as if just received from their
    /// senders (not re-sent to the node's mailbox, where a newer prepare of the same guest could overtake them).
    /// </summary>
    private void ReleaseDeferredPrepares()
    {
        foreach (var d in incoming.TakeReleased())
        {
            OnPrepare(d.Prepare, d.Sender);
        }
    }
}
