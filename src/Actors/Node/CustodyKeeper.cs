using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>
/// The node's side of <see cref="HandoverCustody"/>: the stopped copy of a guest whose coordinator died after the
/// hand-over (GuestHandedOver), before the destination's resume was confirmed, stays in the <see cref="GuestRegistry"/>
/// (handed over) until the HandoverCustody child decides (docs/architecture.md, "Ownership rules"): freed once the
/// record names the destination and the destination lists the guest, resumed here once the destination is gone without
/// resuming and a majority confirmed this node's take-back. Never neither. Also the take-back of a handed-over copy
/// that a coordinator reports (<see cref="TookBack"/>). The child's CustodyEnded comes back to the node as a message,
/// which hands it here. Called on the node's thread only.
/// </summary>
internal sealed class CustodyKeeper(IActorContext context, ILoggingAdapter log, string nodeName, GuestStore store, GuestRegistry guests,
    OutgoingMigrations outgoing, MigrationHistory history, GuestReclaim reclaim, NodeMetricsFeed metrics)
{
    private static readonly TimeSpan CustodyPoll = TimeSpan.FromSeconds(1);

    /// <summary>Called when the coordinator of <paramref name="id"/> died after it released the guest (still held as handed over).</summary>
    public void Begin(Guid id, string vmId, string destination, string reason)
    {
        log.Error("{0}; the guest was already handed over to {1}: its stopped copy stays here until the destination's resume is confirmed, " +
                  "or the destination is gone and the ownership record lets {2} take it back", reason, destination, nodeName);
        context.ActorOf(HandoverCustody.Props(id, vmId, destination, nodeName,
            OwnershipSettings.From(context.System.Settings.Config).MajorityTimeout, CustodyPoll, reason), $"custody-{id:N}");
    }

    /// <summary>A command for a migration whose stopped copy is in custody: a subscriber hears the end; anything else is too late.</summary>
    public void AnswerInCustody(Guid id, object message, IActorRef sender)
    {
        if (message is SubscribeMigration s)
        {
            outgoing.RememberWatcher(id, s.Subscriber);
            return;
        }

        sender.Tell(new CommandFailed($"migration {id} is ending: its coordinator stopped after the hand-over, and the ownership record " +
                                      "decides whether the destination or this node runs the guest", "ending"));
    }

    public void OnCustodyEnded(CustodyEnded c)
    {
        if (!guests.TakeHandedOver(c.MigrationId, out var guest))
        {
            return;
        }

        var destination = history.TryGetStarted(c.MigrationId, out var s) ? s.Destination : "";
        if (c.Verdict == CustodyVerdict.TakeBack)
        {
            // The savers died with the coordinator and left the devices stopped: back to running, then the workload.
            var pausedFor = reclaim.ResumeHere(guest);
            TookBack(c.MigrationId, guest); // ledger KeptBySource: a destination that still asks discards
            outgoing.EndWithoutCoordinator(c.MigrationId, guest.Id, destination, previousIncarnation: false, handedOver: false,
                $"{c.Why}; the destination did not resume the guest: taken back ({c.Record}), it runs on {nodeName}", pausedFor);
            if (destination.Length > 0)
            {
                context.ActorSelection($"{destination.TrimEnd('/')}/user/{HypervisorNode.Name}").Tell(new AbortIncoming(c.MigrationId, $"{c.Why}; the source took the guest back"));
            }
        }
        else
        {
            store.Remove(guest);
            guest.Release(NodeMemoryPool.Get(context.System).Pool); // the copy's last user: its RAM goes to the pool
            outgoing.EndWithoutCoordinator(c.MigrationId, guest.Id, destination, previousIncarnation: false, handedOver: true,
                $"{c.Why}; the destination runs the guest ({c.Record})");
            log.Warning("node {0}: freed the stopped copy of guest {1}: the ownership record says {2}", nodeName, guest.Id, c.Record);
        }

        metrics.Publish();
    }

    /// <summary>
    /// The coordinator had released the stopped guest (GuestHandedOver) but the hand-over failed and it took the guest
    /// back with a majority-confirmed epoch: the guest is in the registry again, running. The ledger says KeptBySource
    /// from now on, so a destination that still asks discards its copy (its claim is refused by the record anyway).
    /// </summary>
    public void TookBack(Guid migrationId, GuestVm guest)
    {
        outgoing.TakenBack(migrationId);
        store.MigrationEnded(guest.Id, migrationId); // no longer Released: a later incarnation must not take it for the destination's
        guests.Run(guest);
        log.Warning("guest {0} was taken back by {1} after a failed hand-over (migration {2})", guest.Id, nodeName, migrationId);
    }
}
