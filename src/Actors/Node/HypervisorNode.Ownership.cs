using Akka.Actor;
using Akka.Event;
using Migration.Actors.Ownership;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

// The node's part in the majority-confirmed ownership record (docs/architecture.md, "Ownership rules").
public sealed partial class HypervisorNode
{
    /// <summary>A created guest gets its first epoch in the record (WriteMajority; a failure is logged, the guest runs).</summary>
    private void RecordCreatedGuest(string vmId) =>
        Context.ActorOf(OwnershipClaim.Props(vmId, ClaimKind.TakeBack, GuestEpoch.None, _nodeName,
            OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout));

    private void OnCreationRecorded(ClaimResult r)
    {
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
        _guests[guest.Id] = new GuestEntry(guest) { State = "running" };
        _owners!.SetOwner(guest.Id, _nodeName);
        _log.Warning("guest {0} was taken back by {1} after a failed hand-over (migration {2})", guest.Id, _nodeName, migrationId);
    }
}
