using System.Net.Sockets;
using Migration.Transport.Wire;

namespace Migration.Transport.Channels;

/// <summary>
/// The channel handshake of docs/protocol.md: the destination sends a challenge nonce, the source answers with
/// a hello proving the migration's token (HMAC over nonce, migration id and channel), the destination acks.
/// </summary>
public static class ChannelHandshake
{
    /// <summary>Source side: connect-time handshake on an already connected socket. Throws ChannelSetupException on refusal.</summary>
    public static Task ClientAsync(Socket socket, byte[] token, Guid migrationId, int channelIndex, int channelCount, CancellationToken ct) =>
        ClientAsync(new SocketChannelIo(socket), token, migrationId, channelIndex, channelCount, ct);

    /// <summary>Source side over any channel pipe (plain or TLS).</summary>
    /// <param name="connection">This connection's number for the channel (0 first, higher for each reconnect attempt).</param>
    public static async Task ClientAsync(IChannelIo socket, byte[] token, Guid migrationId, int channelIndex, int channelCount, CancellationToken ct, ushort connection = 0)
    {
        var buffer = new byte[Math.Max(ChannelHello.Size, ChannelChallenge.Size)];
        await SocketIo.ReceiveExactlyAsync(socket, buffer.AsMemory(0, ChannelChallenge.Size), channelIndex, "challenge", ct).ConfigureAwait(false);
        if (!ChannelChallenge.TryRead(buffer.AsSpan(0, ChannelChallenge.Size), channelIndex, out var challenge, out var error))
        {
            throw new ChannelSetupException(channelIndex, error);
        }

        var hello = ChannelHello.Create(token, challenge, migrationId, (ushort)channelIndex, (ushort)channelCount, connection);
        hello.WriteTo(buffer);
        await SocketIo.SendAllAsync(socket, buffer.AsMemory(0, ChannelHello.Size), ct).ConfigureAwait(false);

        await SocketIo.ReceiveExactlyAsync(socket, buffer.AsMemory(0, ChannelHelloAck.Size), channelIndex, "hello ack", ct).ConfigureAwait(false);
        if (!ChannelHelloAck.TryRead(buffer.AsSpan(0, ChannelHelloAck.Size), channelIndex, out var ack, out error))
        {
            throw new ChannelSetupException(channelIndex, error);
        }

        if (!ack.Accepted)
        {
            throw new ChannelSetupException(channelIndex, $"channel {channelIndex}: destination refused the channel: {ack.Status}", ack.Status);
        }
    }

    /// <summary>Destination side, first half: send a fresh challenge and read the hello (not yet authenticated).</summary>
    public static Task<ServerHello> ServerReadHelloAsync(Socket socket, CancellationToken ct) => ServerReadHelloAsync(new SocketChannelIo(socket), ct);

    /// <summary>Destination side, first half, over any channel pipe.</summary>
    public static async Task<ServerHello> ServerReadHelloAsync(IChannelIo socket, CancellationToken ct)
    {
        var challenge = ChannelChallenge.Create();
        var buffer = new byte[ChannelHello.Size];
        challenge.WriteTo(buffer);
        await SocketIo.SendAllAsync(socket, buffer.AsMemory(0, ChannelChallenge.Size), ct).ConfigureAwait(false);
        await SocketIo.ReceiveExactlyAsync(socket, buffer, -1, "hello", ct).ConfigureAwait(false);
        return ChannelHello.TryRead(buffer, out var hello, out var rejection, out var error)
            ? new ServerHello(challenge, hello, HelloStatus.Accepted, "")
            : new ServerHello(challenge, default, rejection, error); // rejection 0 = malformed: no ack, just close
    }

    /// <summary>Destination side, second half: answer with the authentication result.</summary>
    public static Task ServerSendAckAsync(Socket socket, HelloStatus status, CancellationToken ct) => ServerSendAckAsync(new SocketChannelIo(socket), status, ct);

    /// <summary>Destination side, second half, over any channel pipe.</summary>
    public static async Task ServerSendAckAsync(IChannelIo socket, HelloStatus status, CancellationToken ct)
    {
        var buffer = new byte[ChannelHelloAck.Size];
        new ChannelHelloAck(status).WriteTo(buffer);
        await SocketIo.SendAllAsync(socket, buffer, ct).ConfigureAwait(false);
    }
}

/// <summary>
/// What the destination read from a connecting channel. Status is Accepted if the hello parsed (not yet
/// authenticated), a refusal to send back, or 0 for a malformed hello that gets no answer at all.
/// </summary>
public readonly record struct ServerHello(ChannelChallenge Challenge, ChannelHello Hello, HelloStatus Status, string Error);
