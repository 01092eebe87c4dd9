using System.Net;
using System.Net.Sockets;

namespace Migration.Transport.Channels;

/// <summary>
/// Picks a TCP port on 127.0.0.1 for a process that will be started with it (bench nodes, multi-process tests).
/// A port the kernel hands out for bind(0) lies in the ephemeral range (Linux: 32768-60999), the same range every
/// outgoing connection takes its local port from, so between "picked" and "bound by the child" another process's
/// connect can take it (seen in CI: "Address already in use"). These ports come from 20000-32767 instead, below
/// the ephemeral range, walked from a per-process random start so that processes picking at once rarely meet; each
/// candidate is checked by a bind first. Thread-safe.
/// </summary>
public static class LoopbackPorts
{
    private const int First = 20000;
    private const int Count = 32768 - First;
    private static int _next = Random.Shared.Next(Count);

    /// <summary>A port that was free to bind on 127.0.0.1 just now and is outside the ephemeral range.</summary>
    public static int Pick()
    {
        for (var attempt = 0; attempt < Count; attempt++)
        {
            var port = First + (int)((uint)Interlocked.Increment(ref _next) % Count);
            if (IsFree(port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"no free TCP port on 127.0.0.1 in {First}-{First + Count - 1}");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
