namespace Migration.Actors.Source;

/// <summary>
/// The phases of a source migration, in order. Each is exactly one Become state of <see cref="MigrationCoordinator"/>
/// (Preparing, Connecting, Precopy, SwitchoverAck, StopCopy, Verifying, Committing, Ended); the coordinator enters a
/// phase only through its Enter method, which sets the phase and becomes its state together, so the phase a report or
/// a reply names is always the state's. The two ending states (taking the stopped guest back, waiting for the devices
/// to return to running) are not phases: they keep reporting the phase they were entered from, as before.
/// </summary>
public enum SourcePhase
{
    Setup,
    Connecting,
    Precopy,
    SwitchoverAck,
    StopCopy,
    Verifying,
    Committing,

    /// <summary>The migration ended; its name is the end status (completed, failed, cancelled).</summary>
    Ended,
}

public static class SourcePhaseNames
{
    /// <summary>
    /// The phase's name in progress, reports, timelines and replies (MigrationProgress.Phase, SwitchoverAccepted.Phase):
    /// these strings are user-visible and must not change. <paramref name="endStatus"/> names <see cref="SourcePhase.Ended"/>.
    /// </summary>
    public static string Name(this SourcePhase phase, string endStatus) => phase switch
    {
        SourcePhase.Setup => "setup",
        SourcePhase.Connecting => "connecting",
        SourcePhase.Precopy => "precopy",
        SourcePhase.SwitchoverAck => "switchover-ack",
        SourcePhase.StopCopy => "stop-copy",
        SourcePhase.Verifying => "verifying",
        SourcePhase.Committing => "committing",
        SourcePhase.Ended => endStatus,
        _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, "not a source phase"),
    };

    /// <summary>The phases in which RAM is handed to the channels (progress and the timeline count the dirty RAM left).</summary>
    public static bool SendsRam(this SourcePhase phase) => phase is SourcePhase.Precopy or SourcePhase.SwitchoverAck or SourcePhase.StopCopy;
}
