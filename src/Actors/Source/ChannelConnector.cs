using System.Net.Sockets;
using Migration.Transport.Channels;
using Migration.Transport.Wire;

namespace Migration.Actors.Source;

/// <summary>
/// Opening one connection of a send channel: TCP connect, TLS when the destination asked for it, and the channel
/// handshake that proves the migration's token (docs/protocol.md, "Handshake"), all within the spec's connect
/// timeout; and which connect failures another attempt may cure. Stateless: <see cref="SendChannel"/> runs it off its
/// thread and gets the result (or the failure) piped back; the connection returned belongs to the channel, a failed
/// attempt's socket is disposed here.
/// </summary>
internal static class ChannelConnector
{
    /// <summary>Connects, wraps the socket in TLS when the destination asked for it, and proves the token.</summary>
    public static async Task<IChannelIo> ConnectAsync(ChannelSpec spec, ushort connection, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        IChannelIo io = new SocketChannelIo(socket);
        try
        {
            SocketIo.Tune(socket);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(spec.ConnectTimeout);
            try
            {
                await socket.ConnectAsync(spec.Host, spec.Port, timeout.Token).ConfigureAwait(false);
                if (spec.Tls is not null)
                {
                    io = await spec.Tls.ClientAsync(socket, spec.Index, timeout.Token).ConfigureAwait(false);
                }

                await ChannelHandshake.ClientAsync(io, spec.Token, spec.MigrationId, spec.Index, spec.Count, timeout.Token, connection).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new ChannelSetupException(spec.Index, $"channel {spec.Index}: no connection to {spec.Host}:{spec.Port} within {spec.ConnectTimeout.TotalSeconds:0.#} s");
            }

            // The channel may have stopped meanwhile: nobody would take this connection over.
            ct.ThrowIfCancellationRequested();
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <summary>A connect failure another attempt may cure: network errors, a connection closed before the ack, Duplicate.</summary>
    public static bool WorthRetrying(Exception error) =>
        error is SocketException or IOException or TimeoutException
        || error is ChannelSetupException { Refusal: null or HelloStatus.Duplicate };
}
