using Akka;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;

namespace Migration.Actors.Source;

/// <summary>
/// One multifd channel of a migration on the source: its connection states (connecting, sending, lost, reconnecting,
/// broken). The bytes are pumped by a <see cref="ChannelSender{TJob,TDone}"/> per connection (src/Transport/Channels):
/// a dedicated thread with a bounded queue of channel-queue-depth jobs that sends each with blocking, gathered socket
/// calls and reports its JobDone straight to the coordinator (not through this actor). The coordinator never has more
/// than the queue depth outstanding on a channel (it counts JobDone), so enqueueing cannot fail; if it does, that is a
/// bug and the channel fails. Connection and sender are created here and closed in PostStop (idempotent).
/// Connection loss: the channel abandons the sender (no completion of it is reported after that), closes the connection
/// and reports ChannelLost; on Reconnect it opens a new connection with the same token and index (a new sender, a new
/// generation: a failure reported by an older sender is ignored). Device chunk buffers are never returned here: the
/// coordinator's SentChunkLedger owns them.
/// </summary>
public sealed class SendChannel : ReceiveActor, IWithTimers
{
    private readonly ChannelSpec _spec;
    private readonly IActorRef _coordinator;
    private readonly SourceRamDigests? _digests;
    private readonly CancellationTokenSource _cts = new();
    private IChannelIo? _socket;
    /// <summary>
    /// The connect in progress, until its Connected is handled (on this thread). If this actor stops first, PostStop
    /// disposes the connection it yields: nobody else would (its Connected goes to dead letters).
    /// </summary>
    private Task<IChannelIo>? _connecting;

    /// <param name="digests">The migration's RAM digests, handed to each connection's sender thread (<see cref="SendJobHandler"/>); null in tests without digests.</param>
    public SendChannel(ChannelSpec spec, IActorRef coordinator, SourceRamDigests? digests = null)
    {
        _spec = spec;
        _coordinator = coordinator;
        _digests = digests;
        Become(Connecting);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ChannelSpec spec, IActorRef coordinator, SourceRamDigests? digests = null) =>
        Akka.Actor.Props.Create(() => new SendChannel(spec, coordinator, digests));

    protected override void PreStart()
    {
        // The first connect is retried like a reconnect (a listener busy with other handshakes may close or refuse it),
        // within the connect timeout.
        _reconnectDeadline = DateTime.UtcNow + _spec.ConnectTimeout;
        FirstConnect(_spec);
    }

    private void FirstConnect(ChannelSpec spec)
    {
        _connecting = ChannelConnector.ConnectAsync(spec, _connection, _cts.Token);
        _connecting.PipeTo(Self, success: io => new Connected(io), failure: e => new ChannelBroken(TaskFailures.Unwrap(e), 0));
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
            if (ChannelConnector.WorthRetrying(b.Error) && DateTime.UtcNow + ReconnectBackoff < _reconnectDeadline && _connection < ushort.MaxValue)
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

    /// <summary>A new connection: a fresh sender (thread, writer, codec) over it (the previous one, if any, was abandoned).</summary>
    private void Start(IChannelIo io)
    {
        _connecting = null; // taken over: _socket is disposed by PostStop or the next reconnect
        _socket = io;
        var codec = _spec.Codec == CodecId.None ? null : RamCodecRegistry.Default.Create(_spec.Codec, _spec.CodecLevel);
        _generation++;
        var handler = new SendJobHandler(_spec.Index, _coordinator, Self, _generation, _spec.QueueDepth, _digests);
        _sender = new ChannelSender<SendJob, JobDone>(io, _spec.Index, codec, _spec.ZeroPageDetection, _spec.PacketPages, _spec.QueueDepth, handler,
            _spec.EarlyAbort);
        Become(Sending);
    }

    private ChannelSender<SendJob, JobDone>? _sender;
    private int _generation;
    private ushort _connection;
    private DateTime _reconnectDeadline;
    private int _reconnectAttempts;

    private void Sending()
    {
        Receive<SendJob>(job =>
        {
            if (!_sender!.TryEnqueue(job))
            {
                Drop(job);
                Fail($"channel {_spec.Index}: send queue of depth {_spec.QueueDepth} is full; the coordinator exceeded the channel's bound");
            }
        });
        Receive<SendFailed>(f =>
        {
            // A failure of an abandoned connection's sender: that loss was handled already.
            if (f.Generation == _generation)
            {
                OnLost(f.Error.Message);
            }
        });
        Receive<KillConnection>(_ => OnLost($"channel {_spec.Index}: connection closed (killed)"));
        Receive<CorruptNextPacket>(_ => _sender?.CorruptNextPacket());
    }

    /// <summary>
    /// The connection is gone (a send failed, or it was killed): abandon its sender and close it at once, and report
    /// the loss. The abandoned sender may still be finishing its current send; that only reads a RAM job's pages or a
    /// device chunk's buffer, which the coordinator's ledger keeps (the writer is disposed when its thread ends). It
    /// reports nothing after Abandon returned, so ChannelLost follows every JobDone it reported.
    /// </summary>
    private void OnLost(string reason)
    {
        Kill();
        _generation++;
        _coordinator.Tell(new ChannelLost(_spec.Index, _connection, reason));
        Become(Lost);
    }

    /// <summary>Abandons the sender and closes the connection abruptly (a reset: unsent bytes are lost). Idempotent.</summary>
    private void Kill()
    {
        _sender?.Abandon();
        _socket?.Abort();
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
            if (ChannelConnector.WorthRetrying(f.Error) && DateTime.UtcNow + ReconnectBackoff < _reconnectDeadline)
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
        _connecting = ChannelConnector.ConnectAsync(spec, _connection, _cts.Token);
        _connecting.PipeTo(Self, success: io => new Connected(io), failure: e => new ConnectFailed(TaskFailures.Unwrap(e)));
    }

    private void IgnoreStale()
    {
        Receive<SendFailed>(_ => { });
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
        Receive<Connected>(c =>
        {
            _connecting = null;
            c.Io.Dispose();
        });
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
        // A connect that succeeds after this (or whose Connected was still queued) hands its connection to nobody.
        _connecting?.ContinueWith(t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        _sender?.Abandon();
        _socket?.Dispose();
    }

    private sealed record Connected(IChannelIo Io) : INoSerializationVerificationNeeded;

    private sealed record ChannelBroken(Exception Error, int Generation) : INoSerializationVerificationNeeded;
    /// <summary>Sender thread -> channel: a send of connection generation <paramref name="Generation"/> failed.</summary>
    internal sealed record SendFailed(Exception Error, int Generation) : INoSerializationVerificationNeeded;

    private sealed record ConnectFailed(Exception Error) : INoSerializationVerificationNeeded;

    private sealed record RetryConnect : INoSerializationVerificationNeeded
    {
        public static readonly RetryConnect Instance = new();
    }
}
