using System.Net.Sockets;

namespace Migration.Transport.Channels;

/// <summary>
/// The byte pipe under one channel: a plain socket (zero-copy to and from guest memory) or a stream such as an
/// SslStream (TLS: encryption into and decryption straight out of the same buffers). Owned by its channel, which
/// closes it exactly once.
/// </summary>
public interface IChannelIo : IDisposable
{
    ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct);

    ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct);

    /// <summary>
    /// Sends every byte of <paramref name="segments"/>, in order, with blocking calls (a channel's sender thread): on a
    /// raw socket as one gathered sendmsg per packet (<see cref="GatherSend"/>); over a stream one Write per piece.
    /// </summary>
    void SendAll(ReadOnlySpan<SendSegment> segments, CancellationToken ct);

    /// <summary>
    /// Closes the connection abruptly, as a broken network would: a reset, and whatever was not yet delivered (in either
    /// kernel buffer) is lost. Then disposes. Used when a channel is given up (fault injection, a loss the peer saw first).
    /// </summary>
    void Abort();
}

/// <summary>A channel over a raw socket.</summary>
public sealed class SocketChannelIo(Socket socket) : IChannelIo
{
    public Socket Socket { get; } = socket;

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct) => Socket.SendAsync(buffer, SocketFlags.None, ct);

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct) => Socket.ReceiveAsync(buffer, SocketFlags.None, ct);

    public void SendAll(ReadOnlySpan<SendSegment> segments, CancellationToken ct) => GatherSend.SendAll(Socket, segments, ct);

    public void Abort()
    {
        SocketAbort.Reset(Socket);
        Dispose();
    }

    public void Dispose() => Socket.Dispose();
}

internal static class SocketAbort
{
    /// <summary>Linger 0: closing sends a reset instead of flushing the send buffer (best effort on a broken socket).</summary>
    public static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // already closed or broken: nothing left to reset
        }
    }
}

/// <summary>A channel over a stream (TLS); disposing it disposes the stream and the socket under it.</summary>
public sealed class StreamChannelIo(Stream stream, Socket socket) : IChannelIo
{
    public async ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        await stream.WriteAsync(buffer, ct).ConfigureAwait(false);
        return buffer.Length;
    }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct) => stream.ReadAsync(buffer, ct);

    /// <summary>TLS: each piece is encrypted into records by the stream's blocking Write (no gather across pieces).</summary>
    public void SendAll(ReadOnlySpan<SendSegment> segments, CancellationToken ct)
    {
        foreach (var s in segments)
        {
            ct.ThrowIfCancellationRequested();
            stream.Write(s.Span);
        }
    }

    public void Abort()
    {
        SocketAbort.Reset(socket);
        socket.Dispose(); // first, so the TLS close below cannot block on a dead peer
        Dispose();
    }

    public void Dispose()
    {
        try
        {
            stream.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // closing a broken TLS session
        }

        socket.Dispose();
    }
}
