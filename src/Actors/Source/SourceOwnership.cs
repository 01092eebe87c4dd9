using Akka.Actor;
using Migration.Actors.Cluster;
using Migration.Actors.Ownership;

namespace Migration.Actors.Source;

/// <summary>
/// The source's side of the ownership record and of watching the destination (docs/architecture.md, "Ownership
/// rules"): the destination's PeerWatch child, the one ownership claim (read or take-back) in flight at a time, and
/// why the stopped guest is being taken back. The coordinator's Committing and TakingBack states decide on the
/// answers; this class only starts the children and keeps what they are about.
/// Threading: owned by the MigrationCoordinator and called only on its thread, with its actor context (the children
/// it starts are the coordinator's; their answers go to the coordinator).
/// </summary>
internal sealed class SourceOwnership
{
    private readonly IActorContext _context;
    private readonly string _vmId;
    private readonly string _sourceNode;
    private readonly string _destinationNode;
    private readonly TimeSpan _majorityTimeout;
    private IActorRef _peerWatch = ActorRefs.Nobody;

    public SourceOwnership(IActorContext context, string vmId, string sourceNode, string destinationNode, TimeSpan majorityTimeout)
    {
        _context = context;
        _vmId = vmId;
        _sourceNode = sourceNode;
        _destinationNode = destinationNode;
        _majorityTimeout = majorityTimeout;
    }

    /// <summary>The first reason the stopped guest is being taken back (null: no take-back begun).</summary>
    public string? TakeBackReason { get; private set; }

    /// <summary>The take-back ends the migration as cancelled (an operator's cancel was among its reasons).</summary>
    public bool TakeBackCancelled { get; private set; }

    /// <summary>Committing: the destination's loss that a record read is to decide on (null: none).</summary>
    public PeerLost? PendingPeerLoss { get; set; }

    /// <summary>Watches the destination's node from the start (the coordinator's PreStart).</summary>
    public void WatchDestinationNode()
    {
        if (Address.TryParse(_destinationNode.TrimEnd('/'), out var node))
        {
            _peerWatch = _context.ActorOf(PeerWatch.Props(node, "destination"), "peer-watch");
        }
    }

    /// <summary>Watches the destination's incoming migration too, from the prepare acknowledgement on.</summary>
    public void WatchDestination(IActorRef incoming)
    {
        if (_peerWatch.IsNobody())
        {
            _peerWatch = _context.ActorOf(PeerWatch.Props(incoming, "destination"), "peer-watch");
        }
        else
        {
            _peerWatch.Tell(new WatchPeerActor(incoming));
        }
    }

    /// <summary>A take-back begins or is asked again: the first reason stays; a cancel among the reasons makes it a cancel.</summary>
    public void NoteTakeBack(string reason, bool cancelled)
    {
        TakeBackReason ??= reason;
        TakeBackCancelled |= cancelled;
    }

    private bool _claimPending;

    /// <summary>Starts a claim of <paramref name="kind"/> unless one is in flight (its ClaimResult goes to the coordinator).</summary>
    public void StartClaim(ClaimKind kind)
    {
        if (_claimPending)
        {
            return;
        }

        _claimPending = true;
        _context.ActorOf(OwnershipClaim.Props(_vmId, kind, GuestEpoch.None, _sourceNode, _majorityTimeout));
    }

    /// <summary>The claim in flight answered.</summary>
    public void ClaimAnswered() => _claimPending = false;

    /// <summary>A majority read says the destination holds the guest (it resumed it, or will).</summary>
    public bool NamesDestination(ClaimResult r) => r.Outcome == ClaimOutcome.Won && r.Current.Owner == _destinationNode.TrimEnd('/');

    /// <summary>
    /// A majority read names a third node (neither this one nor the destination): the destination resumed the guest
    /// and it has moved on since (epochs only grow, and only this node's take-back could outrank the destination's
    /// claim). The stopped copy here is stale and must not be taken back (the same rule as HandoverCustodyDecision).
    /// </summary>
    public bool NamesThirdNode(ClaimResult r) =>
        r.Outcome == ClaimOutcome.Won && !r.Current.IsNone && r.Current.Owner != _sourceNode.TrimEnd('/') && r.Current.Owner != _destinationNode.TrimEnd('/');
}
