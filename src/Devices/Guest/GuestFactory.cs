using Migration.Devices.Device;
using Migration.Devices.Device.Structured;
using Migration.Devices.Device.Vfio;
using Migration.Devices.Ram;
using Migration.Devices.Workload;

namespace Migration.Devices.Guest;

/// <summary>Builds guests from their spec: running on their first node, or empty as a migration's destination.</summary>
public static class GuestFactory
{
    /// <summary>A new guest with RAM filled per the spec's pattern, devices in their initial state, workload started.</summary>
    public static GuestVm CreateRunning(GuestSpec spec)
    {
        spec.Validate();
        var blocks = CreateBlocks(spec, prefault: false);
        try
        {
            // One block after the other, each filled by GuestRamFiller's two threads (the caller and one of its own):
            // blocks in parallel would put up to one thread pool thread per GiB into page faults at once, starving
            // the node's actors (cluster heartbeats delayed 6 s during an 8 GiB fill) for no gain on a 2-core machine.
            for (var i = 0; i < blocks.Count; i++)
            {
                GuestRamFiller.Fill(blocks[i], spec.Fill, spec.Seed + i);
            }

            var devices = spec.Devices.Select(CreateDevice).ToArray();
            var workload = new GuestWorkload(blocks, spec.DirtyRateBytesPerSecond);
            var guest = new GuestVm(spec, blocks, devices, workload);
            workload.Start();
            return guest;
        }
        catch
        {
            foreach (var b in blocks)
            {
                b.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// An empty, stopped guest to receive a migration: zeroed RAM (pre-faulted if asked, so the transfer does not
    /// pay first-touch faults), devices created from the same spec (same seeds and sizes) but loaded only from the
    /// stream, and a workload that is not started until the guest resumes here.
    /// </summary>
    /// <param name="loadDelays">Injected load delays (device id -> ms per MiB) for this migration only: the devices load with them,
    /// but the guest keeps <paramref name="spec"/> as given, so a later migration of the guest does not inherit them.</param>
    /// <param name="pool">With a pool, each block is taken from ready pooled memory when there is some (already touched,
    /// <see cref="RamBlock.Recycled"/>: its owner must write or zero every page before the guest resumes), else fresh.</param>
    public static GuestVm CreateIncoming(GuestSpec spec, bool prefault, IReadOnlyDictionary<string, double>? loadDelays = null, GuestMemoryPool? pool = null)
    {
        spec.Validate();
        var blocks = CreateBlocks(spec, prefault, pool);
        var devices = spec.Devices
            .Select(d => loadDelays is not null && loadDelays.TryGetValue(d.Id, out var ms) ? d with { LoadDelayMsPerMiB = ms } : d)
            .Select(CreateDevice).ToArray();
        return new GuestVm(spec, blocks, devices, new GuestWorkload(blocks, spec.DirtyRateBytesPerSecond));
    }

    public static IMigratableDevice CreateDevice(DeviceSpec d) => d.Kind switch
    {
        DeviceKind.Vfio => new SimulatedVfioDevice(new SimulatedVfioOptions
        {
            Id = d.Id,
            Instance = d.Instance,
            StateSizeBytes = d.StateBytes,
            PrecopyBytes = d.PrecopyBytes,
            Seed = d.Seed,
            DirtyRateBytesPerSecond = d.DirtyRateBytesPerSecond,
            LoadDelayPerMiB = TimeSpan.FromMilliseconds(d.LoadDelayMsPerMiB),
        }),
        DeviceKind.Structured => DemoStructuredDevices.CreateVirtioNet(d.Id, d.Instance, d.Seed),
        _ => throw new ArgumentException($"device {d.Id}: unknown kind {d.Kind}"),
    };

    private static List<RamBlock> CreateBlocks(GuestSpec spec, bool prefault, GuestMemoryPool? pool = null)
    {
        var blocks = new List<RamBlock>();
        try
        {
            var sizes = spec.BlockSizes();
            for (var i = 0; i < sizes.Count; i++)
            {
                blocks.Add(pool?.TryTake($"ram{i}", sizes[i]) ?? RamBlock.Create($"ram{i}", sizes[i], new RamBlockOptions { Prefault = prefault }));
            }

            return blocks;
        }
        catch
        {
            foreach (var b in blocks)
            {
                b.Dispose();
            }

            throw;
        }
    }
}
