namespace Migration.Actors.Messages;

/// <summary>
/// One sample of a migration's timeline, taken by the source coordinator on every progress tick (and at the stop, the
/// resume and the end). Byte counters are cumulative since the migration started and never decrease; the other figures
/// are the state at <see cref="TimeMs"/>. Serialized (camelCase) as the report's <c>timeline</c> array.
/// </summary>
public sealed record TimelineSample
{
    /// <summary>Milliseconds since the migration started (the coordinator's clock).</summary>
    public double TimeMs { get; init; }
    public string Phase { get; init; } = "";
    public int Iteration { get; init; }
    /// <summary>RAM bytes put on the wire so far (headers, offsets and payload, compressed if a codec is on).</summary>
    public long RamBytesSent { get; init; }
    /// <summary>Device-state payload bytes sent so far.</summary>
    public long DeviceBytesSent { get; init; }
    /// <summary>Dirty guest RAM not yet sent (pages x 4 KiB), 0 outside precopy and stop-copy.</summary>
    public long RemainingDirtyBytes { get; init; }
    /// <summary>Device bytes the destination holds in its reorder gates (as reported with its latest credit).</summary>
    public long DeviceBufferBytes { get; init; }
    public long DeviceBufferBudgetBytes { get; init; }
    /// <summary>Percent of the guest's CPU time taken away by auto-converge throttling (0 = not throttled).</summary>
    public int ThrottlePercent { get; init; }
}

/// <summary>Something that happened at one instant of a migration (see <see cref="TimelineEventKinds"/>); the report's <c>timelineEvents</c> array.</summary>
public sealed record TimelineEvent
{
    public double TimeMs { get; init; }
    /// <summary>One of <see cref="TimelineEventKinds"/>.</summary>
    public string Kind { get; init; } = "";
    /// <summary>Iteration number, channel index or throttle percent, depending on the kind.</summary>
    public long Value { get; init; }
    public string Detail { get; init; } = "";
}

/// <summary>The event kinds of a timeline. Stop is the start of the downtime, resume its end.</summary>
public static class TimelineEventKinds
{
    public const string Iteration = "iteration";
    public const string Reconnect = "reconnect";
    public const string Stop = "stop";
    public const string Resume = "resume";
    public const string Throttle = "throttle";
}
