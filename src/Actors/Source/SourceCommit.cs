using Akka.Actor;
using Akka.Event;
using Migration.Actors.Cluster;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;

namespace Migration.Actors.Source;

/// <summary>
/// The commit handshake of the source (docs/architecture.md, "Ownership rules"): at DestinationVerified the guest is
/// handed over (GuestHandedOver to the node, then CommitMigration to the destination, or not, under fault injection);
/// while committing, the stopped guest stays here until the destination confirms its resume or the ownership record
/// decides: it names the destination (done), or the destination is gone and the source takes the guest back.
/// The coordinator's Verifying and Committing states hand it their messages; the take-back itself is
/// <see cref="SourceEnding.TakeBack"/>.
/// Threading: owned by the MigrationCoordinator and called only on its thread, with its actor context and timers.
/// </summary>
internal sealed class SourceCommit
{
    private readonly IActorContext _context;
    private readonly ITimerScheduler _timers;
    private readonly SourceRun _run;
    private readonly StopCopySequence _stop;
    private readonly SourceOwnership _ownership;
    private readonly SourceConvergence _convergence;
    private readonly SourceEnding _ending;

    public SourceCommit(IActorContext context, ITimerScheduler timers, SourceRun run, StopCopySequence stop, SourceOwnership ownership,
        SourceConvergence convergence, SourceEnding ending)
    {
        _context = context;
        _timers = timers;
        _run = run;
        _stop = stop;
        _ownership = ownership;
        _convergence = convergence;
        _ending = ending;
    }

    /// <summary>
    /// The destination verified the guest: release ownership first (from here on the guest belongs to the
    /// destination), then send the commit, and time the commit out. The caller enters Committing.
    /// </summary>
    public void HandOver(DestinationVerified v)
    {
        _run.Stats.Incoming = v.Stats;
        _stop.Mark("verified");
        _context.Parent.Tell(new GuestHandedOver(_run.Guest.Id, _run.Id));
        _run.CommitSent = true;
        var settings = _run.Settings;
        if (settings.Inject.Any(f => f.Kind == FaultInjection.DropCommit))
        {
            // The destination must learn the hand-over by asking this node (QueryHandover).
            _run.Log.Warning("migration {0}: injecting drop-commit: CommitMigration not sent", _run.Id);
        }
        else if (settings.Inject.FirstOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "commit") is { } hold)
        {
            // Widens the committing window for fault drills: the destination waits, verified, for the commit.
            _timers.StartSingleTimer("hold-commit", HoldCommitOver.Instance, TimeSpan.FromMilliseconds(hold.Value));
        }
        else
        {
            _run.Incoming.Tell(new CommitMigration(_run.Id));
            _convergence.OnCommitSent();
        }

        // The destination waits commit-timeout for CommitMigration, then asks this node every second (a lost
        // commit): twice the timeout leaves it time to resume through that path and still confirm.
        _timers.StartSingleTimer("phase", new PhaseTimeout("commit"), settings.CommitTimeout * 2);
    }

    /// <summary>The held commit (fault injection hold=commit) goes out now.</summary>
    public void SendHeldCommit() => _run.Incoming.Tell(new CommitMigration(_run.Id));

    /// <summary>The commit timed out: read the record (its answer is <see cref="OnRecord"/>).</summary>
    public void ReadRecord() => _ownership.StartClaim(ClaimKind.Read);

    /// <summary>
    /// Committing, the destination is gone before it confirmed the resume (its node removed, or its incoming migration
    /// stopped). If its node is alive and the record names it, it runs the guest: done. Otherwise take the guest back.
    /// </summary>
    public void OnPeerLost(PeerLost lost)
    {
        if (lost.NodeRemoved)
        {
            _ending.TakeBack($"{lost.Why} after it verified the guest, before it confirmed the resume", cancelled: false);
            return;
        }

        _ownership.PendingPeerLoss = lost;
        _ownership.StartClaim(ClaimKind.Read);
    }

    /// <summary>A read of the record while committing (the destination's actor stopped, or the commit timed out).</summary>
    public void OnRecord(ClaimResult r)
    {
        _ownership.ClaimAnswered();
        if (_ownership.NamesDestination(r))
        {
            _stop.Mark("record names the destination");
            _ending.Finish("completed", null, _stop.PausedMs);
            return;
        }

        if (_ownership.NamesThirdNode(r))
        {
            _run.Log.Warning("migration {0} of {1}: the record names a third node ({2}): the destination resumed the guest and it moved on; the stopped copy here is stale",
                _run.Id, _run.Guest.Id, r.Current);
            _ending.Finish("completed", null, _stop.PausedMs);
            return;
        }

        if (_ownership.PendingPeerLoss is { } lost && r.Outcome == ClaimOutcome.Won)
        {
            _ending.TakeBack($"{lost.Why} without resuming the guest (the record is {r.Current})", cancelled: false);
            return;
        }

        // No majority, or the destination is alive and has not claimed yet: keep the stopped guest and wait.
        _run.Log.Warning("migration {0} of {1}: destination has not confirmed the resume; record: {2} ({3}); keeping the stopped guest and waiting",
            _run.Id, _run.Guest.Id, r.Current, r.Detail);
        _timers.StartSingleTimer("phase", new PhaseTimeout("commit"), _run.Settings.CommitTimeout);
    }
}
