using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;

namespace Migration.Actors.Node;

/// <summary>HandoverCustody -> its parent (the source's HypervisorNode), once: what became of the kept stopped copy.</summary>
/// <param name="Verdict">Release (the destination runs the guest: free the copy) or TakeBack (a majority confirmed
/// <paramref name="Record"/> naming this node: resume the copy here).</param>
public sealed record CustodyEnded(Guid MigrationId, string VmId, CustodyVerdict Verdict, GuestEpoch Record, string Why) : INoSerializationVerificationNeeded;

/// <summary>
/// Decides the stopped copy of a guest whose coordinator died after it had released the guest to the destination
/// (GuestHandedOver) and before the destination's resume was confirmed (docs/architecture.md, "Ownership rules"). The
/// node keeps the copy meanwhile; this actor gathers the facts <see cref="HandoverCustodyDecision"/> needs: the
/// destination's node membership and its incoming migration actor (a <see cref="PeerWatch"/>, the actor found by
/// Identify), a majority read of the record, and the destination node's guest list, every <c>poll</c>; then tells the
/// node one <see cref="CustodyEnded"/> and stops. A take-back is a <see cref="ClaimKind.TakeBack"/> claim, retried every
/// poll until a majority confirms it; once started it is never replaced by a release (its epoch outranks the
/// destination's). A child of the node; its state is touched on its own thread only.
/// </summary>
public sealed class HandoverCustody : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Guid _migrationId;
    private readonly string _vmId;
    private readonly string _destination; // the destination node's address, as the record writes owners
    private readonly string _self;
    private readonly TimeSpan _majorityTimeout;
    private readonly TimeSpan _poll;
    private IActorRef _peerWatch = ActorRefs.Nobody;
    private bool _incomingKnown; // Identify answered (with the actor, or with none)
    private bool _readPending;
    private bool _readStartedAfterGone;
    private CustodyFacts _facts;
    private string _why;

    public HandoverCustody(Guid migrationId, string vmId, string destination, string self, TimeSpan majorityTimeout, TimeSpan poll, string why)
    {
        _migrationId = migrationId;
        _vmId = vmId;
        _destination = destination.TrimEnd('/');
        _self = self;
        _majorityTimeout = majorityTimeout;
        _poll = poll;
        _why = why;
        Deciding();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="destination">The destination node's address (akka.tcp://sys@host:port).</param>
    /// <param name="self">This node's address, the owner a take-back writes.</param>
    /// <param name="poll">How often the record and the destination are asked (1 s in the node).</param>
    /// <param name="why">What cut the migration off, for the report.</param>
    public static Props Props(Guid migrationId, string vmId, string destination, string self, TimeSpan majorityTimeout, TimeSpan poll, string why) =>
        Akka.Actor.Props.Create(() => new HandoverCustody(migrationId, vmId, destination, self, majorityTimeout, poll, why));

    protected override void PreStart()
    {
        if (Address.TryParse(_destination, out var node))
        {
            _peerWatch = Context.ActorOf(PeerWatch.Props(node, "destination"), "peer-watch");
        }
        else
        {
            // Not an address (cannot happen for a migration that reached the hand-over): nobody can resume it there.
            _facts = _facts with { DestinationRemoved = true };
        }

        Timers.StartPeriodicTimer("poll", Poll.Instance, _poll);
        Ask();
    }

    private void Deciding()
    {
        Receive<Poll>(_ => Ask());
        Receive<ActorIdentity>(OnIdentity);
        Receive<PeerLost>(OnPeerLost);
        Receive<GuestList>(l =>
        {
            if (string.Equals(l.Node.TrimEnd('/'), _destination, StringComparison.Ordinal))
            {
                _facts = _facts with { DestinationRunsGuest = l.Guests.Any(g => g.VmId == _vmId && g.State is "running" or "migrating") };
                Decide();
            }
        });
        Receive<ClaimResult>(r =>
        {
            _readPending = false;
            if (r.Outcome == ClaimOutcome.Won)
            {
                _facts = _facts with
                {
                    LatestRecord = r.Current,
                    RecordAfterGone = _readStartedAfterGone ? r.Current : _facts.RecordAfterGone,
                };
                Decide();
            }
        });
    }

    private void TakingBack()
    {
        Receive<Poll>(_ => Claim(ClaimKind.TakeBack));
        Receive<ClaimResult>(r =>
        {
            _readPending = false;
            if (r.Kind != ClaimKind.TakeBack)
            {
                Claim(ClaimKind.TakeBack); // a read that was still on its way
                return;
            }

            if (r.Outcome == ClaimOutcome.Won)
            {
                End(CustodyVerdict.TakeBack, r.Current);
                return;
            }

            _log.Error("migration {0} of {1}: {2}; cannot take the stopped guest back yet ({3}); it stays paused here and the claim is retried",
                _migrationId, _vmId, _why, r.Detail);
        });
        ReceiveAny(_ => { });
    }

    /// <summary>Every poll: a majority read (one at a time), the destination's guest list, and the incoming actor until found.</summary>
    private void Ask()
    {
        Claim(ClaimKind.Read);
        var node = Context.ActorSelection($"{_destination}/user/{HypervisorNode.Name}");
        node.Tell(ListGuests.Instance, Self);
        if (!_incomingKnown)
        {
            Context.ActorSelection($"{_destination}/user/{HypervisorNode.Name}/incoming-{_migrationId:N}").Tell(new Identify(_migrationId), Self);
        }
    }

    private void Claim(ClaimKind kind)
    {
        if (_readPending)
        {
            return;
        }

        _readPending = true;
        _readStartedAfterGone = _facts.IncomingGone;
        Context.ActorOf(OwnershipClaim.Props(_vmId, kind, GuestEpoch.None, _self, _majorityTimeout));
    }

    private void OnIdentity(ActorIdentity id)
    {
        if (_incomingKnown)
        {
            return;
        }

        _incomingKnown = true;
        if (id.Subject is { } incoming)
        {
            _peerWatch.Tell(new WatchPeerActor(incoming));
        }
        else
        {
            Gone("the destination's incoming migration no longer exists", nodeRemoved: false);
        }
    }

    private void OnPeerLost(PeerLost lost) => Gone(lost.Why, lost.NodeRemoved);

    private void Gone(string why, bool nodeRemoved)
    {
        _facts = nodeRemoved ? _facts with { DestinationRemoved = true, IncomingGone = true } : _facts with { IncomingGone = true };
        _why = $"{_why}; {why}";
        _log.Info("migration {0} of {1}: {2}; asking the ownership record who runs the guest", _migrationId, _vmId, why);
        Decide();
        if (_facts.RecordAfterGone is null)
        {
            Claim(ClaimKind.Read); // a read that started before the loss cannot count for it (HandoverCustodyDecision)
        }
    }

    private void Decide()
    {
        switch (HandoverCustodyDecision.Decide(_facts, _self, _destination))
        {
            case CustodyVerdict.Release:
                End(CustodyVerdict.Release, _facts.LatestRecord ?? GuestEpoch.None);
                break;
            case CustodyVerdict.TakeBack:
                Become(TakingBack);
                Claim(ClaimKind.TakeBack);
                break;
        }
    }

    private void End(CustodyVerdict verdict, GuestEpoch record)
    {
        Timers.CancelAll();
        Context.Parent.Tell(new CustodyEnded(_migrationId, _vmId, verdict, record, _why));
        Context.Stop(Self);
    }

    private sealed record Poll : INoSerializationVerificationNeeded
    {
        public static readonly Poll Instance = new();
    }
}
