namespace Migration.Actors.Ownership;

/// <summary>What a source node does with the stopped copy of a guest whose coordinator died after it had released the
/// guest to the destination (GuestHandedOver), before the destination's resume was confirmed.</summary>
public enum CustodyVerdict
{
    /// <summary>Nothing is decided yet: keep the stopped copy (paused, memory held) and look again.</summary>
    Keep = 1,

    /// <summary>The destination runs the guest (the record names it and it lists the guest as its own), or the record
    /// has moved on to a third node: free the copy.</summary>
    Release = 2,

    /// <summary>The destination is gone without having resumed the guest: take it back through the record
    /// (<see cref="ClaimKind.TakeBack"/>, epoch max(read, start) + 2) and resume it here once a majority confirmed that.</summary>
    TakeBack = 3,
}

/// <summary>
/// What the source node knows about a hand-over whose coordinator died (HandoverCustody gathers it).
/// </summary>
/// <param name="DestinationRemoved">The cluster removed (or downed) the destination's node incarnation of the migration.</param>
/// <param name="IncomingGone">The destination's incoming migration actor no longer exists (it stopped, or an Identify
/// found none): the destination resumed the guest or discarded its copy, and will do neither again.</param>
/// <param name="RecordAfterGone">The entry of a majority read started after <paramref name="IncomingGone"/> became
/// true; null if there is none yet (a read started before cannot tell a resume that came after it).</param>
/// <param name="LatestRecord">The entry of the newest successful majority read, whenever it started; null if none yet.</param>
/// <param name="DestinationRunsGuest">The destination node's own guest list has the guest (running or migrating on).</param>
public readonly record struct CustodyFacts(
    bool DestinationRemoved,
    bool IncomingGone,
    GuestEpoch? RecordAfterGone,
    GuestEpoch? LatestRecord,
    bool DestinationRunsGuest);

/// <summary>
/// The rule for the stopped copy a source node keeps after its coordinator died past the hand-over
/// (docs/architecture.md, "Ownership rules"): the same as the coordinator's own committing state. Free it only once the
/// record confirms the destination's epoch and the destination reports the guest as its own; take it back only when the
/// destination's node is removed, or its incoming migration is gone while a majority read made after that still names
/// this node (or nothing), i.e. the destination never won its claim. Otherwise keep it: never neither. Pure, so that the
/// rule is specced apart from the actor that gathers the facts (HandoverCustody).
/// </summary>
public static class HandoverCustodyDecision
{
    /// <param name="self">This (source) node's address as the record writes owners.</param>
    /// <param name="destination">The destination node's address, likewise.</param>
    public static CustodyVerdict Decide(CustodyFacts facts, string self, string destination)
    {
        var latest = facts.LatestRecord;
        if (latest is { IsNone: false } moved && moved.Owner != self && moved.Owner != destination)
        {
            // A newer epoch of a third node: the destination resumed the guest and it moved on (epochs only grow, and
            // only this node's take-back could outrank a claim of the destination's). This copy is stale.
            return CustodyVerdict.Release;
        }

        if (facts.DestinationRemoved)
        {
            // Its process is gone (the split-brain resolver's downing stops it): whatever it claimed, it runs nothing.
            return CustodyVerdict.TakeBack;
        }

        if (latest is { } named && named.Owner == destination && facts.DestinationRunsGuest)
        {
            return CustodyVerdict.Release;
        }

        if (facts.IncomingGone && facts.RecordAfterGone is { } after && (after.IsNone || after.Owner == self))
        {
            // The destination's migration ended and a majority still names this node: it discarded its copy.
            return CustodyVerdict.TakeBack;
        }

        return CustodyVerdict.Keep;
    }
}
