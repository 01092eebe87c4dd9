using Akka.Actor;
using Akka.Event;
using Migration.Actors.Ownership;

namespace Migration.Actors.Node;

/// <summary>
/// The node's part in the majority-confirmed ownership record for a guest it creates (docs/architecture.md, "Ownership
/// rules"): a created guest gets its first epoch in the record (WriteMajority) before the creator hears GuestCreated, so
/// a migration started right after starts from that epoch. A write that gets no majority in time is logged and the guest
/// runs anyway; a migration of it may then fail at the commit (the destination's claim is refused once the creation's
/// epoch spreads) and the source keeps it: never two copies. The claim is a child of the node; its ClaimResult comes
/// back to the node as a message, which hands it here. Called on the node's thread only.
/// </summary>
internal sealed class CreatedGuestClaims(IActorContext context, ILoggingAdapter log, string nodeName)
{
    private readonly Dictionary<string, IActorRef> _creating = new(StringComparer.Ordinal);

    /// <summary>Claims the new guest's first epoch; <paramref name="creator"/> hears GuestCreated once the record has it (or the write timed out).</summary>
    public void Record(string vmId, IActorRef creator)
    {
        _creating[vmId] = creator;
        context.ActorOf(OwnershipClaim.Props(vmId, ClaimKind.TakeBack, GuestEpoch.None, nodeName,
            OwnershipSettings.From(context.System.Settings.Config).MajorityTimeout));
    }

    public void OnRecorded(ClaimResult r)
    {
        if (_creating.Remove(r.VmId, out var creator))
        {
            creator.Tell(new Messages.GuestCreated(r.VmId, nodeName));
        }

        if (r.Outcome != ClaimOutcome.Won)
        {
            log.Warning("guest {0}: its creation on {1} is not in the majority ownership record yet ({2}); a migration of it starts from 'no record'",
                r.VmId, nodeName, r.Detail);
        }
    }
}
