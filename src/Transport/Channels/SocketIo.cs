using System.Net.Sockets;

namespace Migration.Transport.Channels;

/// <summary>Exact-length socket I/O for the channel loops. A peer that closes mid-frame is an error, never a short read.</summary>
public static class SocketIo
{
    /// <summary>Receives exactly buffer.Length bytes; throws ChannelClosedException if the peer closes first.</summary>
    public static ValueTask ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, int channelIndex, string what, CancellationToken ct) =>
        ReceiveExactlyAsync(new SocketChannelIo(socket), buffer, channelIndex, what, ct);

    /// <summary>Sends all of buffer (loops over partial sends).</summary>
    public static ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> buffer, CancellationToken ct) =>
        SendAllAsync(new SocketChannelIo(socket), buffer, ct);

    /// <summary>Receives exactly buffer.Length bytes; throws ChannelClosedException if the peer closes first.</summary>
    public static async ValueTask ReceiveExactlyAsync(IChannelIo io, Memory<byte> buffer, int channelIndex, string what, CancellationToken ct)
    {
        var got = 0;
        while (got < buffer.Length)
        {
            var n = await io.ReceiveAsync(buffer[got..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new ChannelClosedException(channelIndex,
                    $"channel {channelIndex}: peer closed the connection after {got} of {buffer.Length} bytes of {what}");
            }

            got += n;
        }
    }

    /// <summary>Sends all of buffer (loops over partial sends).</summary>
    public static async ValueTask SendAllAsync(IChannelIo io, ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        var sent = 0;
        while (sent < buffer.Length)
        {
            sent += await io.SendAsync(buffer[sent..], ct).ConfigureAwait(false);
        }
    }

    /// <summary>Socket options of every data channel: no Nagle delay (headers are sent apart from page data), 1 MiB buffers.</summary>
    public static void Tune(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = 1 << 20;
        socket.ReceiveBufferSize = 1 << 20;
    }
}

/// <summary>The peer closed a channel, or the connection broke.</summary>
public sealed class ChannelClosedException(int channelIndex, string message) : IOException(message)
{
    public int ChannelIndex { get; } = channelIndex;
}

/// <summary>A channel could not be set up (connect, handshake, refusal by the destination).</summary>
public sealed class ChannelSetupException(int channelIndex, string message, Wire.HelloStatus? refusal = null) : Exception(message)
{
    public int ChannelIndex { get; } = channelIndex;

    /// <summary>The destination's answer when it refused the hello (null: the failure came before or instead of an answer).</summary>
    public Wire.HelloStatus? Refusal { get; } = refusal;
}
