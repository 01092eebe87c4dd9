using System.Net.Sockets;
using System.Threading.Channels;
using Akka;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Akka.Streams;
using Akka.Streams.Dsl;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;

namespace Migration.Actors.Source;

/// <summary>
/// One multifd channel of a migration on the source. Owns its TCP connection and a bounded Akka.Streams flow
/// into it: jobs the coordinator hands over enter a Source.Channel of capacity channel-queue-depth and are
/// encoded and sent one at a time (SelectAsync(1)) by this channel's PacketWriter, off the actor thread.
/// The coordinator never has more than the queue depth outstanding on a channel (it counts JobDone replies),
/// so a TryWrite into the queue cannot fail; if it does, that is a bug and the channel fails.
/// Socket, writer and stream are created here and closed in PostStop (idempotent); results come back as messages.
/// Connection loss: the channel closes the connection, cancels the stream and reports ChannelLost; on Reconnect it
/// opens a new connection with the same token and index (a new writer and stream, a new generation: completions of an
/// older stream are ignored). Device chunk buffers are never returned here: the coordinator's SentChunkLedger owns them.
/// </summary>
public sealed class SendChannel : ReceiveActor, IWithTimers
{
    private readonly ChannelSpec _spec;
    private readonly IActorRef _coordinator;
    private readonly CancellationTokenSource _cts = new();
    private IChannelIo? _socket;
    private PacketWriter? _writer;
    private ChannelWriter<SendJob>? _queue;

    public SendChannel(ChannelSpec spec, IActorRef coordinator)
    {
        _spec = spec;
        _coordinator = coordinator;
        Become(Connecting);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ChannelSpec spec, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new SendChannel(spec, coordinator));

    protected override void PreStart()
    {
        // The first connect is retried like a reconnect (a listener busy with other handshakes may close or refuse it),
        // within the connect timeout.
        _reconnectDeadline = DateTime.UtcNow + _spec.ConnectTimeout;
        FirstConnect(_spec);
    }

    private void FirstConnect(ChannelSpec spec) =>
        ConnectAsync(spec, _connection, _cts.Token).PipeTo(Self, success: io => new Connected(io), failure: e => new ChannelBroken(TaskFailures.Unwrap(e), 0));

    /// <summary>Connects, wraps the socket in TLS when the destination asked for it, and proves the token.</summary>
    private static async Task<IChannelIo> ConnectAsync(ChannelSpec spec, ushort connection, CancellationToken ct)
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

    private void Connecting()
    {
        Receive<Connected>(c =>
        {
            Start(c.Io);
            _coordinator.Tell(new ChannelReady(_spec.Index, _connection));
        });
        Receive<ChannelBroken>(b =>
        {
            if (WorthRetrying(b.Error) && DateTime.UtcNow + ReconnectBackoff < _reconnectDeadline && _connection < ushort.MaxValue)
            {
                Timers.StartSingleTimer("retry", RetryConnect.Instance, ReconnectBackoff);
                return;
            }

            Fail(_connection == 0 ? b.Error.Message : $"{b.Error.Message} (after {_connection + 1} attempts)");
        });
        Receive<RetryConnect>(_ =>
        {
            // A new number per attempt, as for reconnects: an attempt that failed here may have been accepted there.
            _connection++;
            var remaining = _reconnectDeadline - DateTime.UtcNow;
            FirstConnect(_spec with { ConnectTimeout = remaining > TimeSpan.Zero ? remaining : TimeSpan.FromMilliseconds(1) });
        });
        Receive<SendJob>(Drop);
    }

    /// <summary>A new connection: a fresh writer and stream over it (the previous ones, if any, have terminated).</summary>
    private void Start(IChannelIo io)
    {
        _socket = io;
        var codec = _spec.Codec == CodecId.None ? null : RamCodecRegistry.Default.Create(_spec.Codec, _spec.CodecLevel);
        _writer = new PacketWriter(io, _spec.Index, codec, _spec.ZeroPageDetection, _spec.PacketPages);
        _codec = codec;
        _generation++;
        StartStream();
        Become(Sending);
    }

    private IRamCodec? _codec;
    private int _generation;
    private ushort _connection;
    private CancellationTokenSource? _streamCts;
    private DateTime _reconnectDeadline;
    private int _reconnectAttempts;

    private void StartStream()
    {
        var writer = _writer!;
        // A new token per stream (a lost stream is cancelled alone), disposed when that stream has terminated.
        _streamCts = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        var ct = _streamCts.Token;
        var self = Self;
        var index = _spec.Index;
        var generation = _generation;
        var fault = new StreamFault();
        var (queue, completion) = Akka.Streams.Dsl.Source.Channel<SendJob>(_spec.QueueDepth, singleWriter: true)
            .SelectAsync(1, job => ExecuteOrReport(writer, job, index, fault, ct))
            .ToMaterialized(Sink.ForEach<(JobDone? Done, Exception? Error)>(r => self.Tell(new StreamJobDone(r.Done, r.Error, generation))), Keep.Both)
            .Run(Context.Materializer());
        _queue = queue;
        // The writer and codec belong to the stream: disposed (buffers returned) only once it has terminated,
        // so no send can still be using them.
        var codec = _codec;
        var streamCts = _streamCts;
        completion.ContinueWith(_ =>
        {
            writer.Dispose();
            codec?.Dispose();
            streamCts.Dispose();
        }, TaskScheduler.Default);
        completion.PipeTo(Self,
            success: () => new ChannelBroken(new Transport.Channels.ChannelClosedException(index, $"channel {index}: send stream ended"), generation),
            failure: e => new ChannelBroken(TaskFailures.Unwrap(e), generation));
    }

    /// <summary>
    /// A failed send is a result, not a stream failure: the channel then reports the loss (and Akka.Streams does not log a
    /// broken connection as an error of the stage). Jobs after it are cancelled with the connection.
    /// </summary>
    private static async Task<(JobDone? Done, Exception? Error)> ExecuteOrReport(PacketWriter writer, SendJob job, int channel, StreamFault fault, CancellationToken ct)
    {
        // After a failure nothing more goes out on this connection: a packet after a half-written one would be garbage.
        if (fault.Error is { } earlier)
        {
            if (job is RamJob skipped)
            {
                skipped.ReturnPages();
            }

            return (null, earlier);
        }

        try
        {
            return (await Execute(writer, job, channel, ct).ConfigureAwait(false), null);
        }
        catch (Exception e)
        {
            fault.Error = TaskFailures.Unwrap(e);
            return (null, fault.Error);
        }
    }

    /// <summary>The first send error of one stream (written and read by its SelectAsync(1), one job at a time).</summary>
    private sealed class StreamFault
    {
        public Exception? Error { get; set; }
    }

    /// <summary>Runs on the stream (not the actor thread): encodes and sends one job, then returns its buffers.</summary>
    private static async Task<JobDone> Execute(PacketWriter writer, SendJob job, int channel, CancellationToken ct)
    {
        switch (job)
        {
            case RamJob ram:
                try
                {
                    var r = await writer.WriteRamAsync(ram.Block, ram.BlockIndex, ram.Pages, ram.Count, ram.Iteration, ct).ConfigureAwait(false);
                    return new JobDone(channel, JobKind.Ram, r.NormalPages, r.ZeroPages, 0, r.WireBytes, ram.Iteration, -1);
                }
                finally
                {
                    ram.ReturnPages();
                }

            case DeviceChunkJob d:
                {
                    // The chunk's buffer belongs to the coordinator's SentChunkLedger until the destination credits
                    // it (it may have to be sent again); the stream only reads it.
                    var c = d.Chunk;
                    var header = new DeviceChunkHeader(
                        (ushort)c.DeviceIndex,
                        c.StopCopy ? DevicePhase.StopCopy : DevicePhase.Precopy,
                        c.Last ? DeviceChunkFlags.Last : DeviceChunkFlags.None,
                        d.Instance,
                        (ulong)c.Index,
                        (uint)c.Length);
                    var wire = await writer.WriteDeviceChunkAsync(header, c.Buffer.AsMemory(0, c.Length), ct).ConfigureAwait(false);
                    return new JobDone(channel, JobKind.Device, 0, 0, c.Length, wire, 0, c.DeviceIndex);
                }

            case SyncJob s:
                await writer.WriteSyncAsync(s.Iteration, ct).ConfigureAwait(false);
                return new JobDone(channel, JobKind.Sync, 0, 0, 0, PacketHeader.Size + SyncPacket.Size, s.Iteration, -1);

            case EndJob:
                await writer.WriteEndAsync(ct).ConfigureAwait(false);
                return new JobDone(channel, JobKind.End, 0, 0, 0, PacketHeader.Size + EndPacket.Size, 0, -1);

            default:
                throw new InvalidOperationException($"channel {channel}: unknown job {job.GetType().Name}");
        }
    }

    private void Sending()
    {
        Receive<SendJob>(job =>
        {
            if (!_queue!.TryWrite(job))
            {
                Drop(job);
                Fail($"channel {_spec.Index}: send queue of depth {_spec.QueueDepth} is full; the coordinator exceeded the channel's bound");
            }
        });
        Receive<StreamJobDone>(done =>
        {
            // A job of a lost connection's stream that finished after the loss was already written off by the coordinator.
            if (done.Generation != _generation)
            {
                return;
            }

            if (done.Error is not null)
            {
                OnLost(done.Error.Message);
                return;
            }

            _coordinator.Tell(done.Done!);
        });
        Receive<ChannelBroken>(b =>
        {
            if (b.Generation == _generation)
            {
                OnLost(b.Error.Message);
            }
        });
        Receive<KillConnection>(_ => OnLost($"channel {_spec.Index}: connection closed (killed)"));
        Receive<CorruptNextPacket>(_ => _writer?.CorruptNextPacket());
    }

    /// <summary>
    /// The connection is gone (the stream failed, or it was killed): close it and cancel the stream at once, and
    /// report the loss. The cancelled stream may still be finishing its current job; that only reads a RAM job's
    /// pages or a device chunk's buffer, which the coordinator's ledger keeps (the writer is disposed when the
    /// stream has terminated). Completions of this stream are ignored from now on (generation).
    /// </summary>
    private void OnLost(string reason)
    {
        Kill();
        _generation++;
        _coordinator.Tell(new ChannelLost(_spec.Index, _connection, reason));
        Become(Lost);
    }

    /// <summary>Closes the connection abruptly (a reset: unsent bytes are lost) and cancels the stream (idempotent).</summary>
    private void Kill()
    {
        try
        {
            _streamCts?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // that stream has terminated already
        }

        _socket?.Abort();
        _queue?.TryComplete();
    }

    /// <summary>The connection is gone; the coordinator decides whether to reconnect (Reconnect) or to fail.</summary>
    private void Lost()
    {
        Receive<SendJob>(Drop);
        Receive<Reconnect>(r =>
        {
            _reconnectDeadline = DateTime.UtcNow + r.Within;
            _reconnectAttempts = 0;
            Become(Reconnecting);
            TryConnect();
        });
        IgnoreStale();
    }

    private void Reconnecting()
    {
        Receive<SendJob>(Drop);
        Receive<Connected>(c =>
        {
            Start(c.Io);
            _coordinator.Tell(new ChannelReady(_spec.Index, _connection));
        });
        Receive<ConnectFailed>(f =>
        {
            // The destination refuses a second connection for the index until it has taken the old one down
            // (Duplicate), and the listener may be briefly unreachable: both are worth another try. Any other
            // refusal (unknown migration, bad proof) will not change.
            if (WorthRetrying(f.Error) && DateTime.UtcNow + ReconnectBackoff < _reconnectDeadline)
            {
                Timers.StartSingleTimer("retry", RetryConnect.Instance, ReconnectBackoff);
                return;
            }

            Fail($"channel {_spec.Index}: could not reconnect after {_reconnectAttempts} attempts: {f.Error.Message}");
        });
        Receive<RetryConnect>(_ => TryConnect());
        IgnoreStale();
    }

    private static readonly TimeSpan ReconnectBackoff = TimeSpan.FromMilliseconds(200);

    /// <summary>A connect failure another attempt may cure: network errors, a connection closed before the ack, Duplicate.</summary>
    private static bool WorthRetrying(Exception error) =>
        error is SocketException or IOException or TimeoutException
        || error is ChannelSetupException { Refusal: null or HelloStatus.Duplicate };

    private void TryConnect()
    {
        _reconnectAttempts++;
        if (_connection == ushort.MaxValue)
        {
            Fail($"channel {_spec.Index}: {ushort.MaxValue} connections used up");
            return;
        }

        // Every attempt gets a new number: an attempt that timed out here may still have been accepted there.
        _connection++;
        var remaining = _reconnectDeadline - DateTime.UtcNow;
        var spec = _spec with { ConnectTimeout = remaining < _spec.ConnectTimeout ? remaining : _spec.ConnectTimeout };
        ConnectAsync(spec, _connection, _cts.Token).PipeTo(Self, success: io => new Connected(io), failure: e => new ConnectFailed(TaskFailures.Unwrap(e)));
    }

    private void IgnoreStale()
    {
        Receive<StreamJobDone>(_ => { });
        Receive<ChannelBroken>(_ => { });
        Receive<KillConnection>(_ => { });
        Receive<CorruptNextPacket>(_ => { });
    }

    private void Fail(string reason)
    {
        Kill();
        _coordinator.Tell(new ChannelFailed(_spec.Index, reason));
        Become(Broken);
    }

    private void Broken()
    {
        Receive<SendJob>(Drop);
        Receive<Connected>(c => c.Io.Dispose());
        Receive<ConnectFailed>(_ => { });
        Receive<RetryConnect>(_ => { });
        IgnoreStale();
    }

    /// <summary>
    /// A job that will not be sent: a RAM job's page list goes back to the pool (its pages are in the coordinator's
    /// RamSendLog); a device chunk's buffer stays with the coordinator's SentChunkLedger, which resends it.
    /// </summary>
    private static void Drop(SendJob job)
    {
        if (job is RamJob r)
        {
            r.ReturnPages();
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _queue?.TryComplete();
        _socket?.Dispose();
    }

    private sealed record Connected(IChannelIo Io) : INoSerializationVerificationNeeded;

    private sealed record ChannelBroken(Exception Error, int Generation) : INoSerializationVerificationNeeded;

    private sealed record StreamJobDone(JobDone? Done, Exception? Error, int Generation) : INoSerializationVerificationNeeded;

    private sealed record ConnectFailed(Exception Error) : INoSerializationVerificationNeeded;

    private sealed record RetryConnect : INoSerializationVerificationNeeded
    {
        public static readonly RetryConnect Instance = new();
    }
}

/// <summary>Where and how a send channel connects.</summary>
public sealed record ChannelSpec(
    int Index, int Count, Guid MigrationId, string Host, int Port, byte[] Token, TimeSpan ConnectTimeout,
    CodecId Codec, int CodecLevel, bool ZeroPageDetection, int PacketPages, int QueueDepth, ChannelTls? Tls = null);

/// <summary>Channel -> coordinator: connection <paramref name="Connection"/> (its number in the hello) is up and authenticated.</summary>
public sealed record ChannelReady(int Index, ushort Connection = 0) : INoSerializationVerificationNeeded;

/// <summary>Channel -> coordinator: the connection failed; the channel accepts no more work.</summary>
public sealed record ChannelFailed(int Index, string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Channel -> coordinator: the connection broke; the channel closed it and cancelled its stream. The channel drops
/// jobs until told to <see cref="Reconnect"/>; it reports ChannelReady when it is back, or ChannelFailed if it cannot
/// come back.
/// </summary>
public sealed record ChannelLost(int Index, ushort Connection, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Coordinator -> lost channel: connect again (same token and index), retrying within <paramref name="Within"/>.</summary>
public sealed record Reconnect(TimeSpan Within) : INoSerializationVerificationNeeded;

/// <summary>Test and fault injection: close the channel's socket abruptly.</summary>
public sealed record KillConnection : INoSerializationVerificationNeeded
{
    public static readonly KillConnection Instance = new();
}

/// <summary>Fault injection: corrupt the next packet this channel sends (the destination must detect it).</summary>
public sealed record CorruptNextPacket : INoSerializationVerificationNeeded
{
    public static readonly CorruptNextPacket Instance = new();
}

public enum JobKind
{
    Ram,
    Device,
    Sync,
    End,
}

/// <summary>Channel -> coordinator: one job was sent.</summary>
public sealed record JobDone(int Channel, JobKind Kind, int NormalPages, int ZeroPages, long DeviceBytes, long WireBytes, uint Iteration, int DeviceIndex)
    : INoSerializationVerificationNeeded;
