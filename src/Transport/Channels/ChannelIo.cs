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
}

/// <summary>A channel over a raw socket.</summary>
public sealed class SocketChannelIo(Socket socket) : IChannelIo
{
    public Socket Socket { get; } = socket;

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct) => Socket.SendAsync(buffer, SocketFlags.None, ct);

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct) => Socket.ReceiveAsync(buffer, SocketFlags.None, ct);

    public void Dispose() => Socket.Dispose();
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
