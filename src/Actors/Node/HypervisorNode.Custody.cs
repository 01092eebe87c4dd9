using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Devices.Device;

namespace Migration.Actors.Node;

// The stopped copy of a guest whose coordinator died after the hand-over (GuestHandedOver), before the destination's
// resume was confirmed: the node keeps it in _handedOver until HandoverCustody decides (docs/architecture.md, "Ownership
// rules"): freed once the record names the destination and the destination lists the guest, resumed here once the
// destination is gone without resuming and a majority confirmed this node's take-back. Never neither. State is the
// node's, touched on its thread.
public sealed partial class HypervisorNode
{
    private static readonly TimeSpan CustodyPoll = TimeSpan.FromSeconds(1);

    private void ReceiveCustody() => Receive<CustodyEnded>(OnCustodyEnded);

    /// <summary>Called when the coordinator of <paramref name="id"/> died after it released the guest (still in _handedOver).</summary>
    private void BeginCustody(Guid id, string vmId, string destination, string reason)
    {
        _log.Error("{0}; the guest was already handed over to {1}: its stopped copy stays here until the destination's resume is confirmed, " +
                   "or the destination is gone and the ownership record lets {2} take it back", reason, destination, _nodeName);
        Context.ActorOf(HandoverCustody.Props(id, vmId, destination, _nodeName,
            OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout, CustodyPoll, reason), $"custody-{id:N}");
    }

    /// <summary>A command for a migration whose stopped copy is in custody: a subscriber hears the end; anything else is too late.</summary>
    private void AnswerInCustody(Guid id, object message)
    {
        if (message is SubscribeMigration s)
        {
            RememberWatcher(id, s.Subscriber);
            return;
        }

        Sender.Tell(new CommandFailed($"migration {id} is ending: its coordinator stopped after the hand-over, and the ownership record " +
                                      "decides whether the destination or this node runs the guest", "ending"));
    }

    private void OnCustodyEnded(CustodyEnded c)
    {
        if (!_handedOver.Remove(c.MigrationId, out var guest))
        {
            return;
        }

        var destination = _started.TryGetValue(c.MigrationId, out var s) ? s.Destination : "";
        var ended = new PendingReclaim(guest, c.MigrationId, destination, AfterRestart: false, c.Why);
        if (c.Verdict == CustodyVerdict.TakeBack)
        {
            // The savers died with the coordinator and left the devices stopped: back to running, then the workload.
            var pausedFor = ResumeHere(guest);
            TookBack(c.MigrationId, guest); // ledger KeptBySource: a destination that still asks discards
            EndCutOffMigration(ended, handedOver: false, $"{c.Why}; the destination did not resume the guest: taken back ({c.Record}), it runs on {_nodeName}", pausedFor);
            if (destination.Length > 0)
            {
                Context.ActorSelection($"{destination.TrimEnd('/')}/user/{Name}").Tell(new AbortIncoming(c.MigrationId, $"{c.Why}; the source took the guest back"));
            }
        }
        else
        {
            _store.Remove(guest);
            guest.Release(NodeMemoryPool.Get(Context.System).Pool); // the copy's last user: its RAM goes to the pool
            EndCutOffMigration(ended, handedOver: true, $"{c.Why}; the destination runs the guest ({c.Record})");
            _log.Warning("node {0}: freed the stopped copy of guest {1}: the ownership record says {2}", _nodeName, guest.Id, c.Record);
        }

        PublishMetrics();
    }
}
