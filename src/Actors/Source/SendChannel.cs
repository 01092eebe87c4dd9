using System.Net.Sockets;
using System.Threading.Channels;
using Akka;
using Akka.Actor;
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
/// </summary>
public sealed class SendChannel : ReceiveActor
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

    public static Props Props(ChannelSpec spec, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new SendChannel(spec, coordinator));

    protected override void PreStart()
    {
        var spec = _spec;
        var ct = _cts.Token;
        ConnectAsync(spec, ct).PipeTo(Self, success: io => new Connected(io), failure: e => new ChannelBroken(Unwrap(e)));
    }

    /// <summary>Connects, wraps the socket in TLS when the destination asked for it, and proves the token.</summary>
    private static async Task<IChannelIo> ConnectAsync(ChannelSpec spec, CancellationToken ct)
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

                await ChannelHandshake.ClientAsync(io, spec.Token, spec.MigrationId, spec.Index, spec.Count, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new ChannelSetupException(spec.Index, $"channel {spec.Index}: no connection to {spec.Host}:{spec.Port} within {spec.ConnectTimeout.TotalSeconds:0.#} s");
            }

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
            _socket = c.Io;
            var codec = _spec.Codec == CodecId.None ? null : RamCodecRegistry.Default.Create(_spec.Codec, _spec.CodecLevel);
            _writer = new PacketWriter(c.Io, _spec.Index, codec, _spec.ZeroPageDetection, _spec.PacketPages);
            _codec = codec;
            StartStream();
            Become(Sending);
            _coordinator.Tell(new ChannelReady(_spec.Index));
        });
        Receive<ChannelBroken>(OnBroken);
        Receive<SendJob>(j => Drop(j));
    }

    private IRamCodec? _codec;

    private void StartStream()
    {
        var writer = _writer!;
        var ct = _cts.Token;
        var self = Self;
        var index = _spec.Index;
        var (queue, completion) = Akka.Streams.Dsl.Source.Channel<SendJob>(_spec.QueueDepth, singleWriter: true)
            .SelectAsync(1, job => Execute(writer, job, index, ct))
            .ToMaterialized(Sink.ForEach<JobDone>(done => self.Tell(done)), Keep.Both)
            .Run(Context.Materializer());
        _queue = queue;
        // The writer and codec belong to the stream: disposed (buffers returned) only once it has terminated,
        // so no send can still be using them.
        var codec = _codec;
        completion.ContinueWith(_ =>
        {
            writer.Dispose();
            codec?.Dispose();
        }, TaskScheduler.Default);
        completion.PipeTo(Self, success: () => StreamEnded.Instance, failure: e => new ChannelBroken(Unwrap(e)));
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
                try
                {
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
                finally
                {
                    d.Chunk.ReturnBuffer();
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
                OnBroken(new ChannelBroken(new InvalidOperationException(
                    $"channel {_spec.Index}: send queue of depth {_spec.QueueDepth} is full; the coordinator exceeded the channel's bound")));
            }
        });
        Receive<JobDone>(done => _coordinator.Tell(done));
        Receive<StreamEnded>(_ => { });
        Receive<ChannelBroken>(OnBroken);
        Receive<KillConnection>(_ => _socket?.Dispose());
        Receive<CorruptNextPacket>(_ => _writer?.CorruptNextPacket());
    }

    private void OnBroken(ChannelBroken b)
    {
        _coordinator.Tell(new ChannelFailed(_spec.Index, b.Error.Message));
        Become(Broken);
    }

    private void Broken()
    {
        Receive<SendJob>(j => Drop(j));
        Receive<JobDone>(_ => { });
        Receive<ChannelBroken>(_ => { });
        Receive<StreamEnded>(_ => { });
        Receive<KillConnection>(_ => { });
        Receive<CorruptNextPacket>(_ => { });
    }

    private static void Drop(SendJob job)
    {
        switch (job)
        {
            case RamJob r:
                r.ReturnPages();
                break;
            case DeviceChunkJob d:
                d.Chunk.ReturnBuffer();
                break;
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _queue?.TryComplete();
        _socket?.Dispose();
    }

    private static Exception Unwrap(Exception e) => e is AggregateException a ? a.InnerException ?? e : e;

    private sealed record Connected(IChannelIo Io) : INoSerializationVerificationNeeded;

    private sealed record ChannelBroken(Exception Error) : INoSerializationVerificationNeeded;

    private sealed record StreamEnded : INoSerializationVerificationNeeded
    {
        public static readonly StreamEnded Instance = new();
    }
}

/// <summary>Where and how a send channel connects.</summary>
public sealed record ChannelSpec(
    int Index, int Count, Guid MigrationId, string Host, int Port, byte[] Token, TimeSpan ConnectTimeout,
    CodecId Codec, int CodecLevel, bool ZeroPageDetection, int PacketPages, int QueueDepth, ChannelTls? Tls = null);

/// <summary>Channel -> coordinator: connected and authenticated.</summary>
public sealed record ChannelReady(int Index) : INoSerializationVerificationNeeded;

/// <summary>Channel -> coordinator: the connection failed; the channel accepts no more work.</summary>
public sealed record ChannelFailed(int Index, string Reason) : INoSerializationVerificationNeeded;

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
