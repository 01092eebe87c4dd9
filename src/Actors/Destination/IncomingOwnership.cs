using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;

namespace Migration.Actors.Destination;

/// <summary>
/// The destination's side of the ownership rules (docs/architecture.md, "Ownership rules"): from allocation on it
/// watches the source (node and coordinator: a PeerWatch child) and reads the guest's entry in the majority record,
/// the start epoch; once verified, it resumes the guest only after a majority confirmed its claim (the entry unchanged
/// since the start, plus one). One claim is in flight at a time; a claim that reaches no majority is retried.
/// Answers (ClaimResult, PeerLost, RetryOwnership) come to the actor, whose state hands them here; a won claim ends in
/// <see cref="IIncomingOutcomes.Resume"/>, a refused one (or the source lost before Verified) in
/// <see cref="IIncomingOutcomes.Discard"/>; the source lost after Verified is <see cref="LostCommitResolver.OnSourceLost"/>'s.
/// Threading: owned by the IncomingMigration and called only on its thread, with its actor context (the children it
/// starts are the actor's) and timers.
/// </summary>
internal sealed class IncomingOwnership
{
    private readonly Guid _id;
    private readonly PrepareIncoming _request;
    private readonly string _nodeName;
    private readonly TimeSpan _majorityTimeout;
    private readonly IActorContext _context;
    private readonly ITimerScheduler _timers;
    private readonly ILoggingAdapter _log;
    private readonly IncomingFaultHolds _holds;
    private readonly IIncomingOutcomes _outcomes;
    private GuestEpoch? _startEpoch;
    private bool _claimPending;

    /// <summary>
    /// Whether a claim of the guest was ever started here (the source committed, or its answer or death said so): from
    /// then on a write may land in the ownership record at any time, so only the claim's answer may discard the copy.
    /// </summary>
    public bool ClaimStarted { get; private set; }
    private string _claimWhy = "";

    public IncomingOwnership(PrepareIncoming request, string nodeName, TimeSpan majorityTimeout, IActorContext context, ITimerScheduler timers,
        ILoggingAdapter log, IncomingFaultHolds holds, IIncomingOutcomes outcomes)
    {
        _id = request.MigrationId;
        _request = request;
        _nodeName = nodeName;
        _majorityTimeout = majorityTimeout;
        _context = context;
        _timers = timers;
        _log = log;
        _holds = holds;
        _outcomes = outcomes;
    }

    /// <summary>The start epoch was read (verification waits for it: the claim advances it by one).</summary>
    public bool StartEpochKnown => _startEpoch is not null;

    /// <summary>From allocation on: watch the source, and read the entry this migration may later advance by one.</summary>
    public void WatchSourceAndReadStartEpoch()
    {
        _context.ActorOf(PeerWatch.Props(_request.Source, "source"), "peer-watch");
        ReadStartEpoch();
    }

    public void ReadStartEpoch() =>
        _context.ActorOf(OwnershipClaim.Props(_request.Spec.Id, ClaimKind.Read, GuestEpoch.None, _nodeName, _majorityTimeout));

    /// <summary>
    /// Receiving: the start entry arrived (true: it is known now, verification may go on), or could not be read (ask
    /// again in a second).
    /// </summary>
    public bool OnStartEpoch(ClaimResult r)
    {
        if (r.Kind != ClaimKind.Read || _startEpoch is not null)
        {
            return false;
        }

        if (r.Outcome == ClaimOutcome.Won)
        {
            _startEpoch = r.Current;
            return true;
        }

        _timers.StartSingleTimer("read-epoch", RetryOwnership.Instance, TimeSpan.FromSeconds(1));
        return false;
    }

    /// <summary>Receiving: the source is gone before the guest was verified. It never released it: discard and free the copy.</summary>
    public void OnSourceLostBeforeVerify(PeerLost lost)
    {
        // The warning of the loss is this one (PeerWatch logs a stopped peer actor at Info: it also stops on a normal end).
        var reason = $"{lost.Why} before the guest was verified here; discarding the incoming copy";
        _log.Warning("incoming migration {0} of {1}: {2}", _id, _request.Spec.Id, reason);
        _outcomes.Discard(reason);
    }

    /// <summary>Verified: the source released the guest, or is gone. Resume only once a majority confirmed start epoch + 1 here.</summary>
    public void ClaimThenResume(string why)
    {
        ClaimStarted = true;
        _claimWhy = why;
        if (_claimPending)
        {
            return;
        }

        _claimPending = true;
        if (_holds.TryHoldResume())
        {
            // _claimPending stays set, so the source's repeated answers do not claim meanwhile; HoldResumeOver claims.
            return;
        }

        _context.ActorOf(OwnershipClaim.Props(_request.Spec.Id, ClaimKind.IfUnchanged, _startEpoch!.Value, _nodeName, _majorityTimeout));
    }

    /// <summary>Verified: the claim that reached no majority is tried again, for the latest reason.</summary>
    public void RetryClaim() => ClaimThenResume(_claimWhy);

    /// <summary>Verified: the injected hold:resume is over: claim now.</summary>
    public void OnHoldResumeOver()
    {
        _claimPending = false;
        ClaimThenResume(_claimWhy);
    }

    /// <summary>Verified: the claim's answer: resume, discard (the source took the guest back), or retry in a second.</summary>
    public void OnResumeClaim(ClaimResult r)
    {
        if (r.Kind != ClaimKind.IfUnchanged)
        {
            return;
        }

        _claimPending = false;
        switch (r.Outcome)
        {
            case ClaimOutcome.Won:
                _log.Info("incoming migration {0} of {1}: {2}; a majority confirmed {3}: resuming", _id, _request.Spec.Id, _claimWhy, r.Current);
                _outcomes.Resume();
                break;
            case ClaimOutcome.Refused:
                _outcomes.Discard($"{_claimWhy}, but the source took the guest back ({r.Detail}); discarding the verified copy");
                break;
            default:
                _log.Error("incoming migration {0} of {1}: {2}, but {3}; the verified guest stays paused here and the claim is retried",
                    _id, _request.Spec.Id, _claimWhy, r.Detail);
                _timers.StartSingleTimer("claim", RetryOwnership.Instance, TimeSpan.FromSeconds(1));
                break;
        }
    }
}
