using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;

namespace Migration.Actors.Destination;

// The destination's side of the ownership rules (docs/architecture.md, "Ownership rules"): it reads the guest's entry in
// the majority record when the migration starts, watches the source (node and coordinator) in every phase, and resumes
// the verified guest only after a majority confirmed its epoch (the entry unchanged since the start, plus one).
public sealed partial class IncomingMigration
{
    private readonly TimeSpan _majorityTimeout = OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout;
    private GuestEpoch? _startEpoch;
    private bool _claimPending;
    private string _claimWhy = "";

    /// <summary>From allocation on: watch the source, and read the entry this migration may later advance by one.</summary>
    private void WatchSourceAndReadOwnership()
    {
        Context.ActorOf(PeerWatch.Props(_request.Source, "source"), "peer-watch");
        ReadStartEpoch();
    }

    private void ReadStartEpoch() =>
        Context.ActorOf(OwnershipClaim.Props(_request.Spec.Id, ClaimKind.Read, GuestEpoch.None, _nodeName, _majorityTimeout));

    /// <summary>Receiving: the start entry arrived (or could not be read: ask again; verification waits for it).</summary>
    private void OnStartEpoch(ClaimResult r)
    {
        if (r.Kind != ClaimKind.Read || _startEpoch is not null)
        {
            return;
        }

        if (r.Outcome == ClaimOutcome.Won)
        {
            _startEpoch = r.Current;
            TryVerify();
        }
        else
        {
            Timers.StartSingleTimer("read-epoch", RetryOwnership.Instance, TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>Receiving: the source is gone before the guest was verified. It never released it: discard and free the copy.</summary>
    private void OnSourceLostBeforeVerify(PeerLost lost)
    {
        // The warning of the loss is this one (PeerWatch logs a stopped peer actor at Info: it also stops on a normal end).
        var reason = $"{lost.Why} before the guest was verified here; discarding the incoming copy";
        _log.Warning("incoming migration {0} of {1}: {2}", Id, _request.Spec.Id, reason);
        Discard(reason, tellSource: false);
    }

    /// <summary>Answers the prepare (after an injected hold:setup, which keeps the source in setup for fault drills).</summary>
    private void AckPrepare(PrepareAck ack)
    {
        if (_settings.Inject.FirstOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "setup") is { } hold)
        {
            _log.Warning("incoming migration {0}: injecting hold:setup={1}", Id, hold.Value);
            Timers.Cancel("connect"); // the source connects only after the acknowledgement (OnHoldSetupOver restarts it)
            Timers.StartSingleTimer("hold-setup", new HoldSetupOver(ack), TimeSpan.FromMilliseconds(hold.Value));
            return;
        }

        _request.Source.Tell(ack);
    }

    /// <summary>The injected setup hold is over: acknowledge now, and give the channels their whole connect time from here.</summary>
    private void OnHoldSetupOver(HoldSetupOver h)
    {
        Timers.StartSingleTimer("connect", new Timeout("waiting for channels"), _settings.ConnectTimeout + TimeSpan.FromSeconds(10));
        _request.Source.Tell(h.Ack);
    }

    /// <summary>Sends DestinationVerified (after an injected hold, if any) and enters Verified.</summary>
    private void AnnounceVerified(IncomingStats stats)
    {
        if (_settings.Inject.FirstOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "verify") is { } hold && !_holdDone)
        {
            _holdDone = true;
            _log.Warning("incoming migration {0}: injecting hold:verify={1}", Id, hold.Value);
            Timers.StartSingleTimer("hold-verify", new HoldVerifyOver(stats), TimeSpan.FromMilliseconds(hold.Value));
            return;
        }

        _request.Source.Tell(new DestinationVerified(Id, stats));
        BecomeVerified();
    }

    private bool _holdDone;
    private bool _resumeHoldDone;

    /// <summary>Verified: the source released the guest, or is gone. Resume only once a majority confirmed start epoch + 1 here.</summary>
    private void ClaimThenResume(string why)
    {
        _claimWhy = why;
        if (_claimPending)
        {
            return;
        }

        _claimPending = true;
        if (_settings.Inject.FirstOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "resume") is { } hold && !_resumeHoldDone)
        {
            // Widens the window between the decision to resume and the claim for fault drills: _claimPending stays set,
            // so the source's repeated answers do not claim meanwhile; HoldResumeOver claims.
            _resumeHoldDone = true;
            _log.Warning("incoming migration {0}: injecting hold:resume={1}", Id, hold.Value);
            Timers.StartSingleTimer("hold-resume", HoldResumeOver.Instance, TimeSpan.FromMilliseconds(hold.Value));
            return;
        }

        Context.ActorOf(OwnershipClaim.Props(_request.Spec.Id, ClaimKind.IfUnchanged, _startEpoch!.Value, _nodeName, _majorityTimeout));
    }

    private void OnResumeClaim(ClaimResult r)
    {
        if (r.Kind != ClaimKind.IfUnchanged)
        {
            return;
        }

        _claimPending = false;
        switch (r.Outcome)
        {
            case ClaimOutcome.Won:
                _log.Info("incoming migration {0} of {1}: {2}; a majority confirmed {3}: resuming", Id, _request.Spec.Id, _claimWhy, r.Current);
                Resume();
                break;
            case ClaimOutcome.Refused:
                Discard($"{_claimWhy}, but the source took the guest back ({r.Detail}); discarding the verified copy", tellSource: false);
                break;
            default:
                _log.Error("incoming migration {0} of {1}: {2}, but {3}; the verified guest stays paused here and the claim is retried",
                    Id, _request.Spec.Id, _claimWhy, r.Detail);
                Timers.StartSingleTimer("claim", RetryOwnership.Instance, TimeSpan.FromSeconds(1));
                break;
        }
    }

    /// <summary>Verified: the source is gone. Its node removed: the copy here may be the only one, claim it. Only its
    /// coordinator stopped (node alive): ask the node what it decided (QueryHandover), as for a lost commit.</summary>
    private void OnSourceLostAfterVerify(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            ClaimThenResume(lost.Why);
        }
        else
        {
            BeginResolving();
        }
    }

    private sealed record RetryOwnership : INoSerializationVerificationNeeded
    {
        public static readonly RetryOwnership Instance = new();
    }

    /// <summary>Verified: the injected hold:resume is over: claim now.</summary>
    private void OnHoldResumeOver()
    {
        _claimPending = false;
        ClaimThenResume(_claimWhy);
    }

    private sealed record HoldResumeOver : INoSerializationVerificationNeeded
    {
        public static readonly HoldResumeOver Instance = new();
    }

    private sealed record HoldVerifyOver(IncomingStats Stats) : INoSerializationVerificationNeeded;

    private sealed record HoldSetupOver(PrepareAck Ack) : INoSerializationVerificationNeeded;
}
