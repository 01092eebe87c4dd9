using Akka.Actor;
using Akka.Event;
using Migration.Actors.Ownership;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

// The node's part in the majority-confirmed ownership record (docs/architecture.md, "Ownership rules").
public sealed partial class HypervisorNode
{
    private readonly Dictionary<string, IActorRef> _creating = new(StringComparer.Ordinal);

    /// <summary>
    /// A created guest gets its first epoch in the record (WriteMajority) before the creator hears GuestCreated, so a
    /// migration started right after starts from that epoch. A write that gets no majority in time is logged and the
    /// guest runs anyway; a migration of it may then fail at the commit (the destination's claim is refused once the
    /// creation's epoch spreads) and the source keeps it: never two copies.
    /// </summary>
    private void RecordCreatedGuest(string vmId, IActorRef creator)
    {
        _creating[vmId] = creator;
        Context.ActorOf(OwnershipClaim.Props(vmId, ClaimKind.TakeBack, GuestEpoch.None, _nodeName,
            OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout));
    }

    private void OnCreationRecorded(ClaimResult r)
    {
        if (_creating.Remove(r.VmId, out var creator))
        {
            creator.Tell(new Messages.GuestCreated(r.VmId, _nodeName));
        }

        if (r.Outcome != ClaimOutcome.Won)
        {
            _log.Warning("guest {0}: its creation on {1} is not in the majority ownership record yet ({2}); a migration of it starts from 'no record'",
                r.VmId, _nodeName, r.Detail);
        }
    }

    /// <summary>
    /// The coordinator had released the stopped guest (GuestHandedOver) but the hand-over failed and it took the guest
    /// back with a majority-confirmed epoch: the guest is in the registry again, running. The ledger says KeptBySource
    /// from now on, so a destination that still asks discards its copy (its claim is refused by the record anyway).
    /// </summary>
    private void TookBack(Guid migrationId, GuestVm guest)
    {
        _handovers.TakenBack(migrationId);
        _store.MigrationEnded(guest.Id, migrationId); // no longer Released: a later incarnation must not take it for the destination's
        _guests[guest.Id] = new GuestEntry(guest) { State = "running" };
        _log.Warning("guest {0} was taken back by {1} after a failed hand-over (migration {2})", guest.Id, _nodeName, migrationId);
    }
}
