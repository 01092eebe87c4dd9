namespace Migration.Actors.Metrics;

/// <summary>
/// What a node's /metrics shows, as of the node actor's latest change: an immutable value the HypervisorNode builds on
/// its own thread and swaps in atomically (<see cref="NodeMetrics.Publish"/>); the scrape thread only reads it.
/// </summary>
public sealed record NodeMetricsSnapshot
{
    public static readonly NodeMetricsSnapshot Empty = new();

    public int Guests { get; init; }
    public int ActiveOutgoing { get; init; }
    public int ActiveIncoming { get; init; }
    /// <summary>Guest RAM this node holds, as the capacity check counts it (GuestRegistry.MemoryUsed).</summary>
    public long MemoryUsedBytes { get; init; }
    /// <summary>Capacity (migration.node-memory-capacity, or the machine's memory) minus used.</summary>
    public long MemoryFreeBytes { get; init; }
    /// <summary>Migrations running on this node and the last ones that ended (bounded by the node's history).</summary>
    public IReadOnlyList<MigrationFigures> Migrations { get; init; } = [];
}

/// <summary>
/// One migration as this node sees it. Source role: bytes sent and the transfer state (from MigrationProgress and the
/// final report). Destination role: bytes received (the IncomingMigration's periodic IncomingTraffic) and its buffer.
/// </summary>
public sealed record MigrationFigures
{
    public Guid MigrationId { get; init; }
    public string Guest { get; init; } = "";
    /// <summary>"source" or "destination".</summary>
    public string Role { get; init; } = "";
    public bool Active { get; init; }
    public long RamBytesSent { get; init; }
    public long DeviceBytesSent { get; init; }
    public long RamBytesReceived { get; init; }
    public long DeviceBytesReceived { get; init; }
    public long RemainingDirtyBytes { get; init; }
    public double TransferRateBytesPerSecond { get; init; }
    public long DeviceBufferBytes { get; init; }
    public long DeviceBufferBudgetBytes { get; init; }
    public int ChannelReconnects { get; init; }
}
