using Migration.Devices.Device;
using Migration.Devices.Ram;
using Migration.Devices.Workload;

namespace Migration.Devices.Guest;

/// <summary>
/// A guest on one node: its RAM blocks, its devices and its workload (the "vCPUs"). Created running on its
/// first node (<see cref="GuestFactory.CreateRunning"/>) or empty and stopped as a migration's destination
/// (<see cref="GuestFactory.CreateIncoming"/>). Owned by the node's registry or by the migration that is
/// bringing it in; Dispose stops the workload and unmaps the RAM.
/// </summary>
public sealed class GuestVm : IDisposable
{
    private int _disposed;

    public GuestVm(GuestSpec spec, IReadOnlyList<RamBlock> blocks, IReadOnlyList<IMigratableDevice> devices, GuestWorkload workload)
    {
        Spec = spec;
        Blocks = blocks;
        Devices = devices;
        Workload = workload;
    }

    public string Id => Spec.Id;
    public GuestSpec Spec { get; }
    public IReadOnlyList<RamBlock> Blocks { get; }
    public IReadOnlyList<IMigratableDevice> Devices { get; }
    public GuestWorkload Workload { get; }

    /// <summary>Digests of every RAM block (32 hex digits each), in block order.</summary>
    public string[] RamDigests() => Blocks.Select(b => b.ComputeDigest().ToString("x32")).ToArray();

    public void Dispose() => Release(null);

    /// <summary>
    /// Like <see cref="Dispose"/>, but the RAM goes to <paramref name="pool"/> (when it takes it) for a later guest of
    /// this node instead of back to the kernel. Idempotent with Dispose. The caller must have stopped every other user
    /// of the RAM (channels, digests); the pool's quarantine covers stragglers.
    /// </summary>
    public void Release(GuestMemoryPool? pool)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Workload.Dispose();
        foreach (var b in Blocks)
        {
            if (pool is null)
            {
                b.Dispose();
            }
            else
            {
                pool.Return(b);
            }
        }
    }
}
