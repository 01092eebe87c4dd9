using Akka.Actor;

namespace Migration.Actors.Source;

/// <summary>What the transfer engine's pump does after handing out jobs (set by the coordinator at its phase changes).</summary>
internal enum TransferStage
{
    /// <summary>An iteration's RAM handed out is followed by Sync on every channel.</summary>
    Precopy,

    /// <summary>No precopy chunks requested; raise DrainedForSwitchover once every chunk sent is credited back.</summary>
    SwitchoverDrain,

    /// <summary>The guest is stopped: after the last RAM and every device's last chunk, End on every channel.</summary>
    Final,
}

/// <summary>
/// What the transfer engine raises to its coordinator, synchronously on the coordinator's thread, in the middle of the
/// engine's call (the coordinator may change phase, tell the engine its new stage, or abort from inside).
/// </summary>
internal interface ISourceTransferEvents
{
    /// <summary>Every channel has sent Sync of the current iteration (or its lost connection delivered it).</summary>
    void IterationSynced();

    /// <summary>A channel has sent End; <paramref name="everyChannel"/> once all of them have.</summary>
    void EndSent(int channel, bool everyChannel);

    /// <summary>Switchover drain: every device chunk sent was loaded, no chunk waits, every channel is up.</summary>
    void DrainedForSwitchover();

    /// <summary>The destination sent something that does not fit (the text says what arrived and what was expected).</summary>
    void ProtocolViolation(string what);

    /// <summary>A connection in the rotation was lost and the channel reconnects.</summary>
    void ChannelReconnecting(int channel, string reason);

    /// <summary>A point of the stop-phase debug timeline.</summary>
    void Mark(string what);
}

/// <summary>Pump again: the bandwidth limit's bucket has refilled.</summary>
internal sealed record PaceTick : INoSerializationVerificationNeeded
{
    public static readonly PaceTick Instance = new();
}

/// <summary>Ask the devices that had nothing to send again.</summary>
internal sealed record RepollDevices : INoSerializationVerificationNeeded
{
    public static readonly RepollDevices Instance = new();
}
