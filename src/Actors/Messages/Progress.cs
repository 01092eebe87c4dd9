namespace Migration.Actors.Messages;

/// <summary>
/// Periodic progress of a migration, sent to subscribers. Byte counters and <see cref="Percent"/> never
/// decrease from one report to the next, and <see cref="EtaMs"/> (time left, -1 = not known yet) never increases;
/// remaining and expected downtime are current estimates. <see cref="ThrottlePercent"/> is the auto-converge throttle
/// of the guest now.
/// </summary>
public sealed record MigrationProgress(
    Guid MigrationId,
    string VmId,
    string Phase,
    int Iteration,
    long BytesSent,
    long RamBytesSent,
    long DeviceBytesSent,
    double RateMiBps,
    long RemainingBytes,
    double ExpectedDowntimeMs,
    long BufferedDeviceBytes,
    long DeviceBufferBudgetBytes,
    double Percent,
    double ElapsedMs,
    double EtaMs = -1,
    int ThrottlePercent = 0) : IMigrationMessage
{
    /// <summary>Dirty guest RAM not yet sent (part of <see cref="RemainingBytes"/>, which adds the device state left).</summary>
    public long RemainingDirtyBytes { get; init; }

    /// <summary>Channel connections lost and reconnected so far.</summary>
    public int ChannelReconnects { get; init; }
}

/// <summary>The end of a migration, with its report. Sent to subscribers and kept by the source node.</summary>
public sealed record MigrationFinished(MigrationReport Report) : IMigrationMessage;
