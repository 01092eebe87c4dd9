using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Infrastructure;
using Migration.Transport.Channels;
using Migration.Transport.Wire;

namespace Migration.Actors.Node;

/// <summary>
/// The node's data-channel listener: one TCP listening socket for every incoming migration of the node.
/// Each connection gets a fresh challenge; the hello must name a registered migration, a channel index within
/// its channel count not yet connected (or released by the migration after its connection was lost) with a connection
/// number higher than any accepted before for that index, and prove the migration's token. Accepted sockets are handed to the
/// migration's IncomingMigration; anything else gets a refusal ack (when the hello could be parsed) and is closed.
/// Handshakes are started by the accept loop itself (challenge sent at once) and run as tasks bounded by the
/// handshake timeout (handshake-timeout, not connect-timeout) in at most <see cref="MaxPendingHandshakes"/> slots
/// (<see cref="HandshakeSlots"/>: a new connection evicts the oldest pending one, and a slot is freed by its task, on the
/// accept path), so connections that say nothing, or a connect storm, cannot exhaust the node nor keep out a source
/// that proves a live migration's token. Only a read hello reaches the actor. Registry state is touched only on this
/// actor's thread.
/// </summary>
public sealed class ChannelListener : ReceiveActor
{
    public const int MaxPendingHandshakes = 64;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Socket _listenSocket;
    private readonly ChannelTls? _tls;
    private readonly TimeSpan _handshakeTimeout;
    private readonly CancellationTokenSource _cts = new();
    private readonly Dictionary<Guid, Registration> _registry = new();
    private readonly HandshakeSlots _slots = new(MaxPendingHandshakes);

    public ChannelListener(Socket listenSocket, TimeSpan handshakeTimeout, ChannelTls? tls)
    {
        _listenSocket = listenSocket;
        _tls = tls;
        _handshakeTimeout = handshakeTimeout;
        Receive<RegisterIncoming>(r => _registry[r.MigrationId] = new Registration(r.Token, r.Channels, r.Incoming, new HashSet<int>(), new Dictionary<int, int>()));
        Receive<UnregisterIncoming>(u => _registry.Remove(u.MigrationId));
        // The migration took the channel's old connection down: the index may connect again (reconnect).
        Receive<ReleaseChannel>(r =>
        {
            if (_registry.TryGetValue(r.MigrationId, out var reg))
            {
                reg.Connected.Remove(r.Channel);
            }
        });
        Receive<HelloRead>(OnHello);
    }

    public static Props Props(Socket listenSocket, TimeSpan handshakeTimeout, ChannelTls? tls = null) =>
        Akka.Actor.Props.Create(() => new ChannelListener(listenSocket, handshakeTimeout, tls));

    /// <summary>Creates the bound, listening socket (port 0 = any free port).</summary>
    public static Socket Bind(string host, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(new IPEndPoint(IPAddress.Parse(host), port));
        socket.Listen(128);
        return socket;
    }

    protected override void PreStart()
    {
        var self = Self;
        var socket = _listenSocket;
        var ct = _cts.Token;
        var slots = _slots;
        var tls = _tls;
        var timeout = _handshakeTimeout;
        var log = _log;
        _ = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    var s = await socket.AcceptAsync(ct).ConfigureAwait(false);
                    // The slot is taken here and freed by the handshake task: no actor message in between.
                    _ = HandshakeInSlotAsync(s, slots.Take(timeout, ct), tls, self, log);
                }
                catch (Exception) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                    await Task.Delay(50, ct).ConfigureAwait(false);
                }
            }
        }, ct);
    }

    /// <summary>
    /// Runs one handshake in its slot (owned here, disposed when the hello is read or the handshake fails); a read hello
    /// goes to the actor, a failure closes the socket. Runs on the thread pool: touches no actor state (the logging
    /// adapter is thread-safe).
    /// </summary>
    private static async Task HandshakeInSlotAsync(Socket socket, HandshakeSlots.Slot slot, ChannelTls? tls, IActorRef listener, ILoggingAdapter log)
    {
        try
        {
            SocketIo.Tune(socket);
            var hello = await HandshakeAsync(socket, tls, slot.Token).ConfigureAwait(false);
            slot.Dispose();
            listener.Tell(hello);
        }
        catch (Exception e)
        {
            var why = slot.WasEvicted ? "evicted by a newer connection (all handshake slots were pending)"
                : slot.Token.IsCancellationRequested ? "no hello within the handshake timeout"
                : TaskFailures.Unwrap(e).Message;
            slot.Dispose();
            log.Debug("channel listener: handshake with {0} failed: {1}", SafeRemote(socket), why);
            socket.Dispose();
        }
    }

    /// <summary>TLS first (when configured: the client must present a trusted certificate), then challenge and hello.</summary>
    private static async Task<HelloRead> HandshakeAsync(Socket socket, ChannelTls? tls, CancellationToken ct)
    {
        var io = tls is null ? new SocketChannelIo(socket) : await tls.ServerAsync(socket, ct).ConfigureAwait(false);
        try
        {
            return new HelloRead(socket, io, await ChannelHandshake.ServerReadHelloAsync(io, ct).ConfigureAwait(false));
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    private void OnHello(HelloRead h)
    {
        var read = h.Result;
        var status = read.Status;
        var error = read.Error;
        Registration? reg = null;
        if (status == HelloStatus.Accepted)
        {
            if (!_registry.TryGetValue(read.Hello.MigrationId, out reg))
            {
                status = HelloStatus.UnknownMigration;
                error = $"channel {read.Hello.ChannelIndex}: unknown migration {read.Hello.MigrationId}";
            }
            else
            {
                status = read.Hello.Authenticate(reg.Token, read.Challenge, reg.Channels, out error);
                var helloIndex = read.Hello.ChannelIndex;
                var last = reg.LastConnection.GetValueOrDefault(helloIndex, -1);
                if (status == HelloStatus.Accepted && reg.Connected.Contains(helloIndex))
                {
                    status = HelloStatus.Duplicate;
                    error = $"channel {helloIndex} of migration {read.Hello.MigrationId} is already connected";
                }
                else if (status == HelloStatus.Accepted && read.Hello.Connection <= last)
                {
                    // Each attempt of the source has a new, higher number: an older one is stale or replayed.
                    status = HelloStatus.BadChannel;
                    error = $"channel {helloIndex} of migration {read.Hello.MigrationId}: connection {read.Hello.Connection} is not newer than connection {last}, already accepted";
                }
                else if (status == HelloStatus.Accepted)
                {
                    reg.Connected.Add(helloIndex);
                    reg.LastConnection[helloIndex] = read.Hello.Connection;
                }
            }
        }

        if (status == HelloStatus.Duplicate)
        {
            // Usually a source reconnecting a lost channel before this node has taken the old connection down: it retries.
            _log.Info("channel listener: refused a channel from {0}: {1} {2}", SafeRemote(h.Socket), status, error);
        }
        else if (status != HelloStatus.Accepted)
        {
            _log.Warning("channel listener: refused a channel from {0}: {1} {2}", SafeRemote(h.Socket), status, error);
        }

        var io = h.Io;
        var incoming = reg?.Incoming;
        var index = read.Hello.ChannelIndex;
        var connection = read.Hello.Connection;
        var accepted = status == HelloStatus.Accepted;
        if ((int)status == 0)
        {
            // Malformed hello: nothing sensible to answer.
            io.Dispose();
            return;
        }

        _ = SendAckAsync(io, status, accepted ? incoming : null, read.Hello.MigrationId, index, connection, Self, _cts.Token);
    }

    private static async Task SendAckAsync(IChannelIo io, HelloStatus status, IActorRef? incoming, Guid migrationId, int index, ushort connection,
        IActorRef listener, CancellationToken ct)
    {
        try
        {
            await ChannelHandshake.ServerSendAckAsync(io, status, ct).ConfigureAwait(false);
            if (incoming is not null)
            {
                incoming.Tell(new ChannelAccepted(index, connection, io));
                return;
            }
        }
        catch (Exception)
        {
            // The peer went away. An accepted index that never reached the migration is free again.
            if (incoming is not null)
            {
                listener.Tell(new ReleaseChannel(migrationId, index));
            }
        }

        io.Dispose();
    }

    private static string SafeRemote(Socket s)
    {
        try
        {
            return s.RemoteEndPoint?.ToString() ?? "?";
        }
        catch (ObjectDisposedException)
        {
            return "?";
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _listenSocket.Dispose();
    }

    /// <summary>Connected: indices with a live connection; LastConnection: the newest connection number accepted per index.</summary>
    private sealed record Registration(byte[] Token, int Channels, IActorRef Incoming, HashSet<int> Connected, Dictionary<int, int> LastConnection);

    private sealed record HelloRead(Socket Socket, IChannelIo Io, ServerHello Result) : INoSerializationVerificationNeeded;
}
