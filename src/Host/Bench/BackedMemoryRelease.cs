using System.Runtime.InteropServices;

namespace Migration.Host.Bench;

/// <summary>
/// `bench --free-before SIZE` (diagnostic): memory the bench process maps and touches before the guest is created and
/// unmaps right before the measured migration, so the destination's first touches land on memory the host still
/// backs. On this machine's VM (virtio-balloon free page reporting, docs/benchmarks.md) memory free for more than
/// ~2 s is handed back to the host, and a first touch of it costs a host fault per page on top of the kernel's clear;
/// `qemu-peer.sh` starts each repetition right after it deleted the previous one's 2 GiB destination and 2 GiB dump,
/// so QEMU's fresh anonymous destination lands on backed memory. This reproduces that condition for ours; the
/// destination still maps new anonymous memory and the kernel still clears every page it first touches.
/// Linux only (elsewhere <see cref="Touch"/> returns null). Owned by the bench's scenario loop; one thread.
/// </summary>
public sealed unsafe partial class BackedMemoryRelease : IDisposable
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MadvHugePage = 14;
    private const long Page = 4096;

    private byte* _memory;
    private readonly long _bytes;

    private BackedMemoryRelease(byte* memory, long bytes)
    {
        _memory = memory;
        _bytes = bytes;
    }

    /// <summary>
    /// Maps <paramref name="bytes"/> of anonymous memory advised for huge pages (as guest RAM is, so that freeing it
    /// leaves the 2 MiB blocks the destination's huge pages take) and writes one byte per 4 KiB page, so that every
    /// page is allocated and backed. Null on a platform without mmap.
    /// </summary>
    public static BackedMemoryRelease? Touch(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var p = mmap(null, (nuint)bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (p == (void*)-1)
        {
            throw new OutOfMemoryException($"--free-before: mmap of {bytes} bytes failed (errno {Marshal.GetLastPInvokeError()})");
        }

        var memory = (byte*)p;
        _ = madvise(memory, (nuint)bytes, MadvHugePage);
        for (long o = 0; o < bytes; o += Page)
        {
            memory[o] = 1;
        }

        return new BackedMemoryRelease(memory, bytes);
    }

    /// <summary>Unmaps the memory now (the kernel frees it at once; the balloon reports it to the host ~2 s later).</summary>
    public void Dispose()
    {
        if (_memory is null)
        {
            return;
        }

        _ = munmap(_memory, (nuint)_bytes);
        _memory = null;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* addr, nuint length, int advice);
}
