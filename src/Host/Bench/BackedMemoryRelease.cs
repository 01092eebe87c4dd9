using Migration.Devices.Ram;

namespace Migration.Host.Bench;

/// <summary>
/// `bench --free-before SIZE` (diagnostic): memory the bench process maps and touches before the guest is created and
/// releases right before the measured migration, so the destination's first touches land on memory the host still
/// backs. On this machine's VM (virtio-balloon free page reporting, docs/benchmarks.md) memory free for more than
/// ~2 s is handed back to the host, and a first touch of it costs a host fault per page on top of the kernel's clear;
/// `qemu-peer.sh` starts each repetition right after it deleted the previous one's 2 GiB destination and 2 GiB dump,
/// so QEMU's fresh anonymous destination lands on backed memory. This reproduces that condition for ours; the
/// destination still maps new anonymous memory and the kernel still clears every page it first touches.
/// The memory is guest-RAM-like (<see cref="AnonymousMapping"/>: advised for huge pages, so releasing it leaves the
/// 2 MiB blocks the destination's huge pages take). Linux only (elsewhere <see cref="Touch"/> returns null).
/// Owned by the bench's scenario loop; one thread.
/// </summary>
public sealed unsafe class BackedMemoryRelease : IDisposable
{
    private byte* _memory;
    private readonly long _bytes;

    private BackedMemoryRelease(byte* memory, long bytes)
    {
        _memory = memory;
        _bytes = bytes;
    }

    /// <summary>Maps <paramref name="bytes"/> and faults every page in for writing, so each is allocated and backed.</summary>
    public static BackedMemoryRelease? Touch(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        if (!AnonymousMapping.Supported)
        {
            return null;
        }

        var memory = AnonymousMapping.Map(bytes);
        AnonymousMapping.PopulateWrite(memory, bytes);
        return new BackedMemoryRelease(memory, bytes);
    }

    /// <summary>Gives the pages back to the kernel now (the balloon reports them to the host ~2 s later). Idempotent.</summary>
    public void Dispose()
    {
        if (_memory is null)
        {
            return;
        }

        AnonymousMapping.Retire(_memory, _bytes);
        _memory = null;
    }
}
