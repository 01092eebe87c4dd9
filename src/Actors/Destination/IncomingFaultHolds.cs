using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Actors.Destination;

/// <summary>
/// The destination's injected holds for fault drills (<c>hold:setup</c>, <c>hold:verify</c>, <c>hold:resume</c>): each
/// delays one step of the incoming migration by starting a single timer whose message (HoldSetupOver, HoldVerifyOver,
/// HoldResumeOver) the actor's state answers by taking the step. The verify and resume holds happen once per
/// migration; the setup hold once by construction (the prepare is acknowledged once).
/// Threading: owned by the IncomingMigration and called only on its thread, with its timers.
/// </summary>
internal sealed class IncomingFaultHolds
{
    private readonly Guid _id;
    private readonly MigrationSettings _settings;
    private readonly ITimerScheduler _timers;
    private readonly ILoggingAdapter _log;
    private bool _resumeHoldBegun;

    public IncomingFaultHolds(Guid id, MigrationSettings settings, ITimerScheduler timers, ILoggingAdapter log)
    {
        _id = id;
        _settings = settings;
        _timers = timers;
        _log = log;
    }

    /// <summary>hold:verify has begun: verification is over and waits for HoldVerifyOver to announce it.</summary>
    public bool VerifyHoldBegun { get; private set; }

    /// <summary>
    /// hold:setup: if injected, holds <paramref name="ack"/> (HoldSetupOver carries it) and returns true. The source
    /// connects only after the acknowledgement, so the wait for channels stops too (its timer restarts when the hold ends).
    /// </summary>
    public bool TryHoldSetup(PrepareAck ack)
    {
        if (Hold("setup") is not { } hold)
        {
            return false;
        }

        _log.Warning("incoming migration {0}: injecting hold:setup={1}", _id, hold.Value);
        _timers.Cancel(IncomingChannels.ConnectTimer);
        _timers.StartSingleTimer("hold-setup", new HoldSetupOver(ack), TimeSpan.FromMilliseconds(hold.Value));
        return true;
    }

    /// <summary>hold:verify: if injected and not held yet, holds the announcement of <paramref name="stats"/> and returns true.</summary>
    public bool TryHoldVerify(IncomingStats stats)
    {
        if (Hold("verify") is not { } hold || VerifyHoldBegun)
        {
            return false;
        }

        VerifyHoldBegun = true;
        _log.Warning("incoming migration {0}: injecting hold:verify={1}", _id, hold.Value);
        _timers.StartSingleTimer("hold-verify", new HoldVerifyOver(stats), TimeSpan.FromMilliseconds(hold.Value));
        return true;
    }

    /// <summary>
    /// hold:resume: if injected and not held yet, widens the window between the decision to resume and the ownership
    /// claim (HoldResumeOver claims) and returns true.
    /// </summary>
    public bool TryHoldResume()
    {
        if (Hold("resume") is not { } hold || _resumeHoldBegun)
        {
            return false;
        }

        _resumeHoldBegun = true;
        _log.Warning("incoming migration {0}: injecting hold:resume={1}", _id, hold.Value);
        _timers.StartSingleTimer("hold-resume", HoldResumeOver.Instance, TimeSpan.FromMilliseconds(hold.Value));
        return true;
    }

    private FaultInjection? Hold(string phase) => _settings.Inject.FirstOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == phase);
}
