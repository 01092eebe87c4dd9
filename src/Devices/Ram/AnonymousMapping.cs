using System.Runtime.InteropServices;

namespace Migration.Devices.Ram;

/// <summary>
/// Private anonymous memory from mmap(2), advised for transparent huge pages (madvise MADV_HUGEPAGE) — how QEMU
/// backs guest RAM by default. On this kind of machine THP is in "madvise" mode for anonymous memory and off for
/// shmem, so first touch costs one fault per 2 MiB instead of one per 4 KiB (the dominant cost of filling fresh
/// guest memory, see shared/ANCHORS.md). Linux only; elsewhere RamBlock falls back to a mapped file.
/// A mapping is owned by whoever mapped it (a RamBlock, the node's GuestMemoryPool, the bench's BackedMemoryRelease)
/// and retired by <see cref="Retire"/> exactly once.
/// </summary>
public static unsafe partial class AnonymousMapping
{
    private const int ProtRead = 0x1;
    private const int ProtWrite = 0x2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MapNoReserve = 0x4000;
    private const int MapFixed = 0x10;
    private const int MadvHugePage = 14;
    private const int MadvPopulateWrite = 23; // Linux 5.14+

    public static bool Supported => OperatingSystem.IsLinux();

    /// <summary>Maps <paramref name="bytes"/> of zeroed memory; throws OutOfMemoryException if the kernel refuses.</summary>
    public static byte* Map(long bytes)
    {
        var p = mmap(null, (nuint)bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        if (p == (void*)-1)
        {
            throw new OutOfMemoryException($"mmap of {bytes} bytes of guest RAM failed (errno {Marshal.GetLastPInvokeError()})");
        }

        // Best effort: without THP the memory still works, with 4 KiB pages.
        _ = madvise(p, (nuint)bytes, MadvHugePage);
        return (byte*)p;
    }

    /// <summary>
    /// Faults in [p, p+bytes) for writing in a few large calls (madvise MADV_POPULATE_WRITE: the kernel allocates and clears
    /// every page, huge pages where THP applies, without a user-space touch loop); on a kernel without it, touches one
    /// int per 4 KiB page (an atomic OR with 0, which never changes content). Returns true if madvise did it.
    /// </summary>
    public static bool PopulateWrite(byte* p, long bytes)
    {
        // 64 MiB per call: madvise holds the mmap lock for reading while it runs, and a writer waiting for it (any
        // mmap/munmap of the process: the GC, a new thread's stack) would stall every thread behind it for the
        // whole range.
        const long slice = 64L << 20;
        long done = 0;
        while (done < bytes && madvise(p + done, (nuint)Math.Min(slice, bytes - done), MadvPopulateWrite) == 0)
        {
            done += Math.Min(slice, bytes - done);
        }

        if (done >= bytes)
        {
            return true;
        }

        for (long offset = done; offset < bytes; offset += 4096)
        {
            Interlocked.Or(ref *(int*)(p + offset), 0);
        }

        return false;
    }

    /// <summary>How long a retired range stays mapped (empty) before its address range is given back.</summary>
    public static readonly TimeSpan RetireGrace = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Releases the memory at once, but not the address range: the range is replaced by a fresh, empty private
    /// mapping (MAP_FIXED), so the guest's pages go back to the kernel now, while a straggler that still touches the
    /// block after its owner discarded it (a receive loop finishing its last packet, a digest task) reads zeros or
    /// writes into throw-away pages instead of faulting and killing the node. The range is unmapped after
    /// <see cref="RetireGrace"/>.
    /// </summary>
    public static void Retire(byte* p, long bytes)
    {
        var replaced = mmap(p, (nuint)bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve | MapFixed, -1, 0);
        if (replaced == (void*)-1)
        {
            _ = munmap(p, (nuint)bytes);
            return;
        }

        var address = (nint)p;
        _ = Task.Delay(RetireGrace).ContinueWith(_ => munmap((void*)address, (nuint)bytes), TaskScheduler.Default);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* addr, nuint length, int advice);
}
