namespace Migration.Devices.Device.Vfio;

/// <summary>
/// Configuration of a <see cref="SimulatedVfioDevice"/>. Source and destination must be created with the same
/// options (same id, seed, sizes): the content of every region is a pure function of (seed, region, version).
/// </summary>
public sealed record SimulatedVfioOptions
{
    /// <summary>Largest supported region (a record's length is a u32 and a region is generated in one piece).</summary>
    public const int MaxRegionSize = 64 << 20;
    /// <summary>Most regions a device may have (bounds the per-region bookkeeping arrays).</summary>
    public const int MaxRegions = 1 << 26;

    public required string Id { get; init; }
    public int Instance { get; init; }
    /// <summary>Size of the device state in bytes (up to several GiB; never held in memory).</summary>
    public required long StateSizeBytes { get; init; }
    /// <summary>Bytes of state (from the start) offered as precopy initial data: 0..StateSizeBytes.</summary>
    public long PrecopyBytes { get; init; }
    public long Seed { get; init; }
    /// <summary>How fast the running device changes its state (bytes/s, whole regions at a time); 0 = never.</summary>
    public long DirtyRateBytesPerSecond { get; init; }
    /// <summary>Simulated load cost: WriteChunk/FinishResuming sleep this long per MiB written.</summary>
    public TimeSpan LoadDelayPerMiB { get; init; } = TimeSpan.Zero;
    /// <summary>Unit of versioning and of one stream record's payload; the last region may be shorter.</summary>
    public int RegionSize { get; init; } = 64 * 1024;
    /// <summary>Clock for lazy dirtying; null = <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? Clock { get; init; }

    /// <summary>Number of regions these options give.</summary>
    public int RegionCount => (int)((StateSizeBytes + RegionSize - 1) / RegionSize);

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad option.</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Id, nameof(Id));
        string d = $"device {Id}";
        if (Instance < 0)
            throw new ArgumentException($"{d}: Instance {Instance} must be >= 0", nameof(Instance));
        if (StateSizeBytes <= 0)
            throw new ArgumentException($"{d}: StateSizeBytes {StateSizeBytes} must be positive", nameof(StateSizeBytes));
        if (RegionSize < 1 || RegionSize > MaxRegionSize)
            throw new ArgumentException($"{d}: RegionSize {RegionSize} must be in 1..{MaxRegionSize}", nameof(RegionSize));
        if ((StateSizeBytes + RegionSize - 1) / RegionSize > MaxRegions)
            throw new ArgumentException($"{d}: {StateSizeBytes} bytes in regions of {RegionSize} exceed {MaxRegions} regions", nameof(RegionSize));
        if (PrecopyBytes < 0 || PrecopyBytes > StateSizeBytes)
            throw new ArgumentException($"{d}: PrecopyBytes {PrecopyBytes} must be in 0..{StateSizeBytes}", nameof(PrecopyBytes));
        if (DirtyRateBytesPerSecond < 0)
            throw new ArgumentException($"{d}: DirtyRateBytesPerSecond {DirtyRateBytesPerSecond} must be >= 0", nameof(DirtyRateBytesPerSecond));
        if (LoadDelayPerMiB < TimeSpan.Zero)
            throw new ArgumentException($"{d}: LoadDelayPerMiB {LoadDelayPerMiB} must be >= 0", nameof(LoadDelayPerMiB));
    }
}
