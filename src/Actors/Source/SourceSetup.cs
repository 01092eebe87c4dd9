using Migration.Transport.Flow;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

/// <summary>
/// The setup of a source migration, in two steps the coordinator's Preparing and Connecting states take: checking the
/// destination's PrepareAck and starting one send channel per connection (<see cref="OnPrepareAck"/>), then, once every
/// channel is connected, the migration's worker pool, one device saver per device and the transfer engine
/// (<see cref="StartTransfer"/>). Everything it creates is written to the <see cref="SourceRun"/>.
/// Threading: owned by the MigrationCoordinator and called only on its thread, with its actor context (the channels
/// and savers it starts are the coordinator's children and report to it).
/// </summary>
internal sealed class SourceSetup
{
    private readonly IActorContext _context;
    private readonly SourceRun _run;
    private readonly SourceOwnership _ownership;

    public SourceSetup(IActorContext context, SourceRun run, SourceOwnership ownership)
    {
        _context = context;
        _run = run;
        _ownership = ownership;
    }

    /// <summary>
    /// Checks the acknowledgement and, if it fits, keeps it and starts the channels (they connect by themselves and
    /// answer ChannelReady), and watches the destination's incoming migration. Returns why the migration cannot go on (then nothing was started), or null.
    /// </summary>
    public string? OnPrepareAck(PrepareAck ack)
    {
        var settings = _run.Settings;
        if (PeerReplies.PrepareAckProblem(ack, _run.Id) is { } bad)
        {
            return $"destination protocol violation: {bad}";
        }

        if (ack.DeviceBufferBudget < settings.ChunkSize)
        {
            return $"destination budget {ack.DeviceBufferBudget} bytes is smaller than chunk-size {settings.ChunkSize}";
        }

        if (ack.Tls && _run.Tls is null)
        {
            _run.Incoming = ack.Incoming;
            return $"destination requires TLS on the channels but {_run.SourceNode} has no certificate (migration.tls)";
        }

        _run.Ack = ack;
        _run.Incoming = ack.Incoming;
        _ownership.WatchDestination(ack.Incoming);
        var channels = new IActorRef[settings.Channels];
        _run.Links = new ChannelLinks(channels.Length);
        // Before the channels: their sender threads hash each whole segment they send (SourceRamDigests.OnSent).
        _run.SegmentDigests = new SourceRamDigests(_run.Guest.Blocks);
        for (var i = 0; i < channels.Length; i++)
        {
            var spec = new ChannelSpec(i, channels.Length, _run.Id, ack.Host, ack.Port, ack.Token, settings.ConnectTimeout,
                settings.Codec, settings.CodecLevel, settings.ZeroPageDetection, settings.PacketPages, settings.ChannelQueueDepth,
                ack.Tls ? _run.Tls : null, EarlyAbort: ack.RawRamUnderCodec);
            channels[i] = _context.ActorOf(SendChannel.Props(spec, _context.Self, _run.SegmentDigests), $"channel-{i}");
        }

        _run.Channels = channels;
        return null;
    }

    /// <summary>
    /// Every channel is connected: creates the worker pool, the savers (told to begin their precopy save) and the
    /// transfer engine, whose events go to <paramref name="events"/>. Every RAM page is marked dirty for iteration 1.
    /// </summary>
    public void StartTransfer(ITimerScheduler timers, ISourceTransferEvents events)
    {
        var settings = _run.Settings;
        var devices = _run.Guest.Devices;
        var workers = settings.DeviceWorkers > 0 ? settings.DeviceWorkers : Math.Clamp(devices.Count, 1, Environment.ProcessorCount);
        // The migration's own worker pool for device saving: created now, disposed when the migration ends (PostStop).
        var pool = new WorkerPool($"save-{_run.Id.ToString()[..8]}", workers, capacity: Math.Max(16, devices.Count * 4));
        _run.Pool = pool;
        if (devices.Count > 0)
        {
            // The savers rent every chunk from the node's chunk pool, and the ledger keeps each until it is credited: at
            // most the granted budget plus each saver's read-ahead is out at once, and no more than the guest's device
            // state takes. Fill the pool for that now, so that no chunk buffer is allocated while device state streams
            // (the destination does the same at prepare). The pool keeps what it holds for the node's next migrations.
            DeviceChunkBuffers.Prepare(ChunkBuffersOut(_run.Ack!.DeviceBufferBudget, settings.ChunkSize, settings.DeviceReadAhead,
                devices.Select(d => d.StateSizeBytes)), settings.ChunkSize);
        }

        _run.Savers = devices.Select((d, i) => _context.ActorOf(
            DeviceSaver.Props(i, d, pool, settings.ChunkSize, settings.DeviceReadAhead, DeviceChunkBuffers.Shared), $"saver-{i}")).ToArray();
        var scanner = new RamScanner(_run.Guest.Blocks, settings.PacketPages);
        var credit = new DeviceCreditPool(_run.Ack!.DeviceBufferBudget, settings.ChunkSize, devices.Count);
        var state = new TransferState(_run.Channels, _run.Savers, devices, scanner, credit, settings.ChannelQueueDepth, settings.DeviceReadAhead)
        {
            DeviceRequestsEnabled = true,
        };
        _run.Transfer = new SourceTransfer(_run.Id, state, _run.Links, _run.Channels, settings, _run.Stats, timers, _run.Log, events);
        _run.TellSavers(BeginPrecopySave.Instance);
        scanner.MarkAllDirty();
    }

    /// <summary>
    /// Bytes of chunk buffers a source may have out at once: in flight (at most the granted budget, and at most all
    /// devices' state) plus each saver's read-ahead (at most its device's state), in whole chunks.
    /// </summary>
    public static long ChunkBuffersOut(long budgetBytes, int chunkSize, int readAhead, IEnumerable<long> deviceStateBytes)
    {
        long stateChunks = 0;
        long readAheadChunks = 0;
        foreach (var bytes in deviceStateBytes)
        {
            var chunks = (Math.Max(0, bytes) + chunkSize - 1) / chunkSize;
            stateChunks += chunks;
            readAheadChunks += Math.Min(readAhead, chunks);
        }

        return (Math.Min(budgetBytes / chunkSize, stateChunks) + readAheadChunks) * chunkSize;
    }
}
