using Migration.Devices.Device;
using Migration.Devices.Ram;
using Migration.Devices.Workload;

namespace Migration.Devices.Guest;

/// <summary>
/// What a guest is made of: enough to create it on a node, and to create its empty counterpart on a
/// migration's destination (like a VM definition that both hypervisors know). Immutable; travels in
/// control-plane messages.
/// </summary>
public sealed record GuestSpec(
    string Id,
    long RamBytes,
    IReadOnlyList<DeviceSpec> Devices,
    long DirtyRateBytesPerSecond = 0,
    RamFillPattern Fill = RamFillPattern.Mixed,
    int Seed = 1)
{
    /// <summary>RAM is split into blocks of at most this size ("ram0", "ram1", ...).</summary>
    public const long MaxBlockBytes = 1L << 30;

    /// <summary>Sizes of the RAM blocks in order.</summary>
    public IReadOnlyList<long> BlockSizes()
    {
        var sizes = new List<long>();
        for (var left = RamBytes; left > 0; left -= MaxBlockBytes)
        {
            sizes.Add(Math.Min(left, MaxBlockBytes));
        }

        return sizes;
    }

    /// <summary>Throws ArgumentException naming the first bad value.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Id))
        {
            throw new ArgumentException("guest id is empty");
        }

        if (RamBytes <= 0 || RamBytes % RamBlock.PageSize != 0)
        {
            throw new ArgumentException($"guest {Id}: RAM size {RamBytes} bytes is not a positive multiple of 4 KiB");
        }

        if (DirtyRateBytesPerSecond < 0)
        {
            throw new ArgumentException($"guest {Id}: dirty rate {DirtyRateBytesPerSecond} is negative");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in Devices)
        {
            d.Validate();
            if (!seen.Add(d.Id))
            {
                throw new ArgumentException($"guest {Id}: device id '{d.Id}' appears twice");
            }
        }
    }
}

/// <summary>One device of a guest. For Vfio: state size, precopy share, seed, dirty rate and load delay
/// of the simulated device; for Structured: the seed of its field values.</summary>
public sealed record DeviceSpec(
    string Id,
    DeviceKind Kind,
    int Instance = 0,
    long StateBytes = 0,
    long PrecopyBytes = 0,
    int Seed = 7,
    long DirtyRateBytesPerSecond = 0,
    double LoadDelayMsPerMiB = 0)
{
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Id) || Id.Length > 64)
        {
            throw new ArgumentException($"device id '{Id}' must be 1..64 characters");
        }

        if (Kind == DeviceKind.Vfio)
        {
            if (StateBytes <= 0)
            {
                throw new ArgumentException($"device {Id}: state size {StateBytes} must be positive");
            }

            if (PrecopyBytes < 0 || PrecopyBytes > StateBytes)
            {
                throw new ArgumentException($"device {Id}: precopy {PrecopyBytes} bytes must be within 0..{StateBytes}");
            }
        }
        else if (Kind != DeviceKind.Structured)
        {
            throw new ArgumentException($"device {Id}: unknown kind {Kind}");
        }

        if (LoadDelayMsPerMiB < 0 || DirtyRateBytesPerSecond < 0)
        {
            throw new ArgumentException($"device {Id}: negative load delay or dirty rate");
        }
    }
}
