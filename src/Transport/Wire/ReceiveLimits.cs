using Migration.Transport.Codecs;

namespace Migration.Transport.Wire;

/// <summary>Expected identity of one device of the migration, indexed by the wire device index.</summary>
/// <param name="Known">False for a hole in the table: chunks for that index are rejected as unknown.</param>
/// <param name="Instance">The instance id the source must put in every chunk of this device.</param>
public readonly record struct DeviceSlot(bool Known, uint Instance)
{
    public static DeviceSlot Of(uint instance) => new(true, instance);
    public static DeviceSlot Unknown => default;
}

/// <summary>
/// What the destination accepts from the wire for one migration, fixed at Prepare time and shared read-only
/// by every receive channel of that migration (immutable after construction; safe from any thread).
/// Negotiated values may only tighten the hard limits of <see cref="WireConstants"/>.
/// </summary>
public sealed class ReceiveLimits
{
    private readonly long[] blockPageCounts;
    private readonly DeviceSlot[] devices;

    /// <param name="codec">The RAM codec negotiated for the migration; RAM packets carry this one, or None for raw pages (early abort).</param>
    /// <param name="maxPagesPerPacket">1..<see cref="WireConstants.MaxPagesPerPacket"/>.</param>
    /// <param name="maxDeviceChunkBytes">1..<see cref="WireConstants.MaxDeviceChunkBytes"/>.</param>
    /// <param name="blockPageCounts">Page count of each RAM block, indexed by the wire block index (≤ 65536 blocks). Copied.</param>
    /// <param name="devices">Device table indexed by the wire device index (≤ 65536 entries). Copied.</param>
    public ReceiveLimits(
        CodecId codec,
        int maxPagesPerPacket,
        int maxDeviceChunkBytes,
        ReadOnlySpan<long> blockPageCounts,
        ReadOnlySpan<DeviceSlot> devices)
    {
        if (codec is not (CodecId.None or CodecId.Zstd or CodecId.Lz4))
        {
            throw new ArgumentOutOfRangeException(nameof(codec), codec, "unknown RAM codec");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(maxPagesPerPacket, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxPagesPerPacket, WireConstants.MaxPagesPerPacket);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDeviceChunkBytes, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDeviceChunkBytes, WireConstants.MaxDeviceChunkBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blockPageCounts.Length, ushort.MaxValue + 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(devices.Length, ushort.MaxValue + 1);
        foreach (long pages in blockPageCounts)
        {
            // Offsets are u64 byte offsets, so a block may hold at most 2^52 pages.
            ArgumentOutOfRangeException.ThrowIfNegative(pages, nameof(blockPageCounts));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(pages, long.MaxValue >> WireConstants.PageShift, nameof(blockPageCounts));
        }

        Codec = codec;
        MaxPagesPerPacket = maxPagesPerPacket;
        MaxDeviceChunkBytes = maxDeviceChunkBytes;
        this.blockPageCounts = blockPageCounts.ToArray();
        this.devices = devices.ToArray();
    }

    public CodecId Codec { get; }
    public int MaxPagesPerPacket { get; }
    public int MaxDeviceChunkBytes { get; }

    /// <summary>Page count per RAM block, indexed by block index.</summary>
    public ReadOnlySpan<long> BlockPageCounts => blockPageCounts;

    /// <summary>Device table, indexed by device index.</summary>
    public ReadOnlySpan<DeviceSlot> Devices => devices;

    /// <summary>Largest RAM packet body (after the 16-byte packet header) a peer may send under these limits.</summary>
    public uint MaxRamBody =>
        RamPacketHeader.BodyLength(MaxPagesPerPacket, 0, (uint)MaxPayloadFor(MaxPagesPerPacket));

    /// <summary>Largest device-state packet body a peer may send under these limits.</summary>
    public uint MaxDeviceBody => (uint)(DeviceChunkHeader.Size + MaxDeviceChunkBytes);

    /// <summary>Per-channel view used by every validating TryRead.</summary>
    public ReceiveContext ForChannel(int channelIndex) => new(channelIndex, this);

    internal long MaxPayloadFor(int normalPages) =>
        Codec == CodecId.None ? (long)normalPages * WireConstants.PageSize : RamPacketHeader.MaxRamPayload(normalPages);
}

/// <summary>
/// Validation context of one receive channel: the channel index (for error texts) and the migration's limits.
/// A small value passed by <c>in</c>; owned by the channel's receive loop.
/// </summary>
public readonly record struct ReceiveContext(int ChannelIndex, ReceiveLimits Limits);
