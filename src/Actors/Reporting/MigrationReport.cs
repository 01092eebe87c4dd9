namespace Migration.Actors.Messages;

/// <summary>
/// The final report of a migration. Property names serialize (camelCase) to the JSON report fields of the
/// demo's --json option; see docs/architecture.md.
/// </summary>
public sealed record MigrationReport
{
    public Guid MigrationId { get; init; }
    public string VmId { get; init; } = "";
    public string Source { get; init; } = "";
    public string Destination { get; init; } = "";
    /// <summary>
    /// "completed", "failed" or "cancelled" (the guest runs on the source), or "handed-over": the destination verified the
    /// guest and the source released it, but the resume was not confirmed in time (the destination resumes it on its own).
    /// </summary>
    public string Status { get; init; } = "failed";
    public bool Verified { get; init; }
    public int Channels { get; init; }
    public string Codec { get; init; } = "none";
    public double TotalMs { get; init; }
    public double SetupMs { get; init; }
    public double DowntimeMs { get; init; }
    public int Iterations { get; init; }
    public bool ForcedSwitchover { get; init; }
    /// <summary>Why the guest was stopped: "converged", "forced-by-operator" or "max-iterations"; null if it never was.</summary>
    public string? SwitchoverReason { get; init; }
    /// <summary>The downtime expected when the switchover was decided (docs/architecture.md "Downtime estimate"), to compare with <see cref="DowntimeMs"/>.</summary>
    public double ExpectedDowntimeMs { get; init; }
    /// <summary>Its terms: "N ms = transfer A + device load B + digests C + verify/commit D".</summary>
    public string? ExpectedDowntimeTerms { get; init; }
    /// <summary>Highest auto-converge throttle of the guest, percent (0 = never throttled).</summary>
    public int MaxThrottlePercent { get; init; }
    /// <summary>Wire throughput of the precopy phase (first packet to the stop), MiB/s.</summary>
    public double PrecopyThroughputMiBps { get; init; }
    /// <summary>The precopy bandwidth limit in force at the end, bytes/s (0 = unlimited).</summary>
    public long MaxBandwidth { get; init; }
    public long RamBytes { get; init; }
    public long RamTransferredBytes { get; init; }
    public long NormalPages { get; init; }
    public long ZeroPages { get; init; }
    /// <summary>Of <see cref="NormalPages"/>, those sent raw although a codec was negotiated: they looked incompressible (early abort).</summary>
    public long UncompressedPages { get; init; }
    public long DeviceStateBytes { get; init; }
    public long WireBytes { get; init; }
    public double ThroughputMiBps { get; init; }
    public long DeviceBufferBudgetBytes { get; init; }
    public long PeakDeviceBufferBytes { get; init; }
    public long OutOfOrderChunks { get; init; }
    /// <summary>Channel connections lost before the stop and reconnected; the pages and device chunks they took with them were sent again.</summary>
    public int ChannelReconnects { get; init; }
    public long ResentPages { get; init; }
    public long ResentDeviceChunks { get; init; }
    public double DowntimeLimitMs { get; init; }
    /// <summary>Bytes the destination node allocated from prepare to verification (its own GC figure); null if it did not report.</summary>
    public long? DestinationAllocatedBytes { get; init; }
    /// <summary>MiB the destination node allocated per GiB delivered (guest RAM written plus device-state bytes received) while they streamed; null if not measured.</summary>
    public double? DestinationSteadyAllocMiBPerGiB { get; init; }
    public string? Error { get; init; }
    public IReadOnlyList<DeviceReport> Devices { get; init; } = [];
    /// <summary>RAM bytes put on the wire (headers, offsets, payload); WireBytes minus the device packets.</summary>
    public long RamWireBytes { get; init; }
    /// <summary>The migration's time series, one sample per progress tick (src/Actors/Reporting/Timeline.cs).</summary>
    public IReadOnlyList<TimelineSample> Timeline { get; init; } = [];
    /// <summary>Iteration boundaries, reconnects, stop (downtime start), resume (downtime end), throttle steps.</summary>
    public IReadOnlyList<TimelineEvent> TimelineEvents { get; init; } = [];
}

public sealed record DeviceReport
{
    public string Id { get; init; } = "";
    public string Kind { get; init; } = "";
    public long StateBytes { get; init; }
    public long PrecopyBytes { get; init; }
    public long Chunks { get; init; }
    public long OutOfOrderChunks { get; init; }
    public long PeakBufferedBytes { get; init; }
    public bool DigestMatch { get; init; }
}
