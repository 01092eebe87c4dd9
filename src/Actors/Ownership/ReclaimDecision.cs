namespace Migration.Actors.Ownership;

/// <summary>What a node does with a copy of a guest it may no longer own, once its <see cref="ClaimKind.Reclaim"/> answered.</summary>
public enum ReclaimVerdict
{
    /// <summary>A majority confirmed a new epoch naming this node: run the guest here.</summary>
    Run = 1,

    /// <summary>The record names another node: that node owns the guest; discard this copy and free its memory.</summary>
    Discard = 2,

    /// <summary>Nothing is decided (no majority answered, or the entry changed between the read and the write): keep the
    /// copy paused and ask again. Never run it blind.</summary>
    AskAgain = 3,
}

/// <summary>
/// The rule for a copy a node holds without knowing whether it still owns it (docs/architecture.md, "Ownership rules"):
/// a node keeps running a guest only while it holds the newest confirmed epoch. Pure, so that the rule is specced apart
/// from the actors that apply it (the node's GuestReclaim).
/// </summary>
public static class ReclaimDecision
{
    public static ReclaimVerdict Decide(ClaimResult result, string self)
    {
        if (result.Kind != ClaimKind.Reclaim)
        {
            throw new ArgumentException($"a {result.Kind} claim result is not a reclaim", nameof(result));
        }

        return result.Outcome switch
        {
            ClaimOutcome.Won when result.Current.Owner == self => ReclaimVerdict.Run,
            // Refused with the entry read: another node holds it. Refused without one: the local replica changed between
            // the read and the write (a concurrent claim): the next read says by whom.
            ClaimOutcome.Refused when !result.Current.IsNone && result.Current.Owner != self => ReclaimVerdict.Discard,
            _ => ReclaimVerdict.AskAgain,
        };
    }
}
