using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Migration.Transport.Channels;

/// <summary>
/// Blocking, gathered sends on a connected socket: a packet's header and its payload runs (straight from guest
/// memory) go out in one <c>sendmsg</c> with an iovec per piece, as QEMU's multifd channel threads do (qio_channel_writev).
/// On Linux this is a P/Invoke to libc: .NET keeps the descriptor non-blocking once it served an async call, so a full
/// send buffer (EAGAIN) is waited out with <c>poll</c>, in slices of <see cref="PollSliceMs"/> so a cancelled send
/// stops promptly. Elsewhere it falls back to one blocking Socket.Send per piece.
/// The socket handle is ref-counted for the duration of the call, so the descriptor cannot be closed (and its number
/// reused) under a send; a send on a closed socket fails with ObjectDisposedException. No allocation per call.
/// Threading: one caller per socket at a time (a channel's sender thread).
/// </summary>
public static unsafe partial class GatherSend
{
    /// <summary>Pieces in one sendmsg (a RAM packet has the head plus at most PageRuns.MaxDirect runs).</summary>
    public const int MaxSegments = 16;

    private const int PollSliceMs = 50;
    private const int MsgNoSignal = 0x4000;
    private const short PollOut = 0x4;
    private const int EAgain = 11;
    private const int EIntr = 4;

    /// <summary>Sends every byte of <paramref name="segments"/> in order, blocking; throws on a broken connection.</summary>
    public static void SendAll(Socket socket, ReadOnlySpan<SendSegment> segments, CancellationToken ct)
    {
        if (segments.Length > MaxSegments)
        {
            throw new ArgumentOutOfRangeException(nameof(segments), segments.Length, $"at most {MaxSegments} pieces per send");
        }

        if (!OperatingSystem.IsLinux())
        {
            foreach (var s in segments)
            {
                for (var sent = 0; sent < s.Length;)
                {
                    sent += socket.Send(s.Span[sent..], SocketFlags.None);
                }
            }

            return;
        }

        var handle = socket.SafeHandle;
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            SendAllLinux((int)handle.DangerousGetHandle(), segments, ct);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static void SendAllLinux(int fd, ReadOnlySpan<SendSegment> segments, CancellationToken ct)
    {
        var iov = stackalloc IoVec[MaxSegments];
        var count = 0;
        foreach (var s in segments)
        {
            if (s.Length > 0)
            {
                iov[count++] = new IoVec { Base = s.Pointer, Length = (nuint)s.Length };
            }
        }

        var first = 0;
        while (first < count)
        {
            var msg = new MsgHdr { Iov = iov + first, IovLength = (nuint)(count - first) };
            var n = sendmsg(fd, &msg, MsgNoSignal);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr)
                {
                    continue;
                }

                if (errno != EAgain)
                {
                    throw new SocketException(ToSocketError(errno));
                }

                WaitWritable(fd, ct);
                continue;
            }

            // Advance past what the kernel took: whole pieces, then into the first piece not fully sent.
            var left = (nuint)n;
            while (first < count && left >= iov[first].Length)
            {
                left -= iov[first].Length;
                first++;
            }

            if (first < count)
            {
                iov[first].Base += left;
                iov[first].Length -= left;
            }
        }
    }

    private static void WaitWritable(int fd, CancellationToken ct)
    {
        var p = new PollFd { Fd = fd, Events = PollOut };
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var r = poll(&p, 1, PollSliceMs);
            if (r > 0)
            {
                return; // writable, or an error/hang-up that the next sendmsg reports
            }

            if (r < 0 && Marshal.GetLastPInvokeError() != EIntr)
            {
                throw new SocketException(ToSocketError(Marshal.GetLastPInvokeError()));
            }
        }
    }

    private static int ToSocketError(int errno) => (int)(errno switch
    {
        32 => SocketError.Shutdown,          // EPIPE
        104 => SocketError.ConnectionReset,  // ECONNRESET
        110 => SocketError.TimedOut,         // ETIMEDOUT
        9 => SocketError.OperationAborted,   // EBADF
        _ => SocketError.SocketError,
    });

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeoutMs);

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr of Linux (64-bit layout; sequential layout pads msg_namelen to 8 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }
}
