using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Cluster;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;

namespace Migration.Actors.Source;

// Ownership of the stopped guest on the source (docs/architecture.md, "Ownership rules"). Once the guest is paused for
// stop-copy, the source runs it again only after a majority confirmed its take-back in the ownership record; after
// DestinationVerified it keeps the stopped guest (never disposes it) until the destination confirms its resume, or the
// record says the destination holds it, or the destination is gone and the source took it back.
public sealed partial class MigrationCoordinator
{
    private bool _claimPending;
    private string? _takeBackReason;
    private bool _takeBackCancelled;
    private readonly TimeSpan _majorityTimeout = OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout;

    /// <summary>How long the guest has been paused (0 before the stop): the report's downtime, also on failure.</summary>
    private double PausedMs => _stopMs >= 0 ? _clock.Elapsed.TotalMilliseconds - _stopMs : 0;

    private IActorRef _peerWatch = ActorRefs.Nobody;

    /// <summary>Watches the destination's node from the start, and its incoming migration from the prepare acknowledgement on.</summary>
    private void WatchDestinationNode()
    {
        if (Address.TryParse(_destinationNode.TrimEnd('/'), out var node))
        {
            _peerWatch = Context.ActorOf(PeerWatch.Props(node, "destination"), "peer-watch");
        }
    }

    private void WatchDestination(IActorRef incoming)
    {
        if (_peerWatch.IsNobody())
        {
            _peerWatch = Context.ActorOf(PeerWatch.Props(incoming, "destination"), "peer-watch");
        }
        else
        {
            _peerWatch.Tell(new WatchPeerActor(incoming));
        }
    }

    /// <summary>
    /// Before the commit: the destination's node is gone (end now), or only its incoming migration stopped: that one
    /// usually says why (IncomingFailed, from it or its node), so give that a second to arrive before failing with
    /// the bare loss.
    /// </summary>
    private void OnPeerLost(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            Abort(lost.Why, cancelled: false, destinationKnowsAlready: true);
        }
        else
        {
            Timers.StartSingleTimer("peer-grace", new PeerGraceOver(lost.Why), TimeSpan.FromSeconds(1));
        }
    }

    private sealed record PeerGraceOver(string Why) : INoSerializationVerificationNeeded;

    /// <summary>The stopped guest cannot be handed over: take it back through the record, then resume it and finish.</summary>
    private void TakeBack(string reason, bool cancelled)
    {
        if (_commitSent && _takeBackReason is null)
        {
            // Committing: the savers left the devices stopped (Abort already told them otherwise): back to running state.
            foreach (var s in _savers)
            {
                s.Tell(AbortSave.Instance);
            }
        }

        _takeBackReason ??= reason;
        _takeBackCancelled |= cancelled;
        StartClaim(ClaimKind.TakeBack);
        Become(TakingBack);
    }

    private void StartClaim(ClaimKind kind)
    {
        if (_claimPending)
        {
            return;
        }

        _claimPending = true;
        Context.ActorOf(OwnershipClaim.Props(_guest.Id, kind, GuestEpoch.None, _sourceNode, _majorityTimeout));
    }

    private void TakingBack()
    {
        Receive<ClaimResult>(r =>
        {
            _claimPending = false;
            if (r.Outcome == ClaimOutcome.Won)
            {
                _commitSent = false; // the guest is ours again: the node puts it back in its registry
                _guest.Workload.Resume();
                _log.Warning("migration {0} of {1}: {2}; took the guest back ({3}) and resumed it on {4}", _id, _guest.Id, _takeBackReason, r.Current, _sourceNode);
                // Devices back to running before the node frees the guest for a new migration (MigrationCoordinator.Aborting.cs);
                // AbortSave again: a take-back after the verification never sent it, and a saver confirms a repeat once more.
                foreach (var s in _savers)
                {
                    s.Tell(AbortSave.Instance);
                }

                EndAfterDeviceAborts(_takeBackCancelled ? "cancelled" : "failed", $"{_takeBackReason}; the guest resumed on {_sourceNode} (ownership {r.Current})");
                return;
            }

            _log.Error("migration {0} of {1}: {2}; cannot take the stopped guest back yet ({3}); it stays paused here and the claim is retried",
                _id, _guest.Id, _takeBackReason, r.Detail);
            Timers.StartSingleTimer("claim", RetryClaim.Instance, TimeSpan.FromSeconds(1));
        });
        Receive<RetryClaim>(_ => StartClaim(ClaimKind.TakeBack));
        Receive<CancelMigration>(_ => Sender.Tell(new CommandFailed($"migration {_id} is already ending: {_takeBackReason}", "ending")));
        Receive<ProgressTick>(_ => PublishProgress());
        Receive<SubscribeMigration>(OnSubscribe);
        Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        ReceiveAny(_ => { });
    }

    /// <summary>
    /// Committing, the destination is gone before it confirmed the resume (its node removed, or its incoming migration
    /// stopped). If its node is alive and the record names it, it runs the guest: done. Otherwise take the guest back.
    /// </summary>
    private void OnPeerLostCommitting(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            TakeBack($"{lost.Why} after it verified the guest, before it confirmed the resume", cancelled: false);
            return;
        }

        _pendingPeerLoss = lost;
        StartClaim(ClaimKind.Read);
    }

    private PeerLost? _pendingPeerLoss;

    /// <summary>A read of the record while committing (the destination's actor stopped, or the commit timed out).</summary>
    private void OnCommitRecord(ClaimResult r)
    {
        _claimPending = false;
        if (r.Outcome == ClaimOutcome.Won && r.Current.Owner == _destinationNode.TrimEnd('/'))
        {
            Mark("record names the destination");
            Finish("completed", null, PausedMs);
            return;
        }

        if (_pendingPeerLoss is { } lost && r.Outcome == ClaimOutcome.Won)
        {
            TakeBack($"{lost.Why} without resuming the guest (the record is {r.Current})", cancelled: false);
            return;
        }

        // No majority, or the destination is alive and has not claimed yet: keep the stopped guest and wait.
        _log.Warning("migration {0} of {1}: destination has not confirmed the resume; record: {2} ({3}); keeping the stopped guest and waiting",
            _id, _guest.Id, r.Current, r.Detail);
        Timers.StartSingleTimer("phase", new PhaseTimeout("commit"), _settings.CommitTimeout);
    }

    private sealed record RetryClaim : INoSerializationVerificationNeeded
    {
        public static readonly RetryClaim Instance = new();
    }
}
