using System.Buffers;
using System.Diagnostics;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Devices.Device;

namespace Migration.Actors.Source;

/// <summary>
/// Reads one device's state as an ordered stream of chunks, on the migration's worker pool, with a bounded
/// read-ahead: at most <c>readAhead</c> chunks are read but not yet taken by the coordinator, whatever the
/// device's size (back-pressure: a full read-ahead queue simply stops reading). The coordinator grants credit
/// for several chunks at once (GrantChunks); the saver pushes a ChunkReady per chunk while grants last. One read runs at a time, so
/// the device is driven by one thread at a time as its contract requires.
/// Chunk indices are consecutive across PRE_COPY and STOP_COPY. In STOP_COPY the chunk that ends the state is
/// marked Last (an empty Last chunk if the state ended exactly at a chunk boundary).
/// State is touched only on this actor's thread; device calls run on the pool and come back as messages.
/// Abort contract: on AbortSave the saver stops reading, returns its buffers, waits for the device call in flight (if
/// any) to end, then runs one last call that puts the device back to RUNNING (<see cref="DeviceRecovery"/>) and answers
/// SaveAborted to every AbortSave it received. Its owner must not stop it before that answer (a Stop would overtake
/// the AbortSave and leave the device in PRE_COPY/STOP_COPY); MigrationCoordinator waits for it, bounded by
/// migration.device-abort-timeout.
/// </summary>
public sealed class DeviceSaver : ReceiveActor, IWithTimers
{
    private readonly int _deviceIndex;
    private readonly IMigratableDevice _device;
    private readonly WorkerPool _pool;
    private readonly int _chunkSize;
    private readonly int _readAhead;
    private readonly Queue<SavedChunk> _ready = new();
    private readonly TimeSpan _repollDelay = TimeSpan.FromMilliseconds(20);
    private IActorRef _coordinator = ActorRefs.Nobody;
    private bool _stopCopy;
    private bool _busy;
    private bool _dry;
    private bool _ended;
    private bool _aborted;
    private bool _stopCopyRequested;
    private bool _abortRequested;
    private bool _abortStarted;
    private bool _abortDone;
    private string? _abortError;
    private readonly List<IActorRef> _abortWaiters = [];
    private int _wanted;
    private long _nextIndex;
    private long _bytes;
    private long _precopyBytes;
    private DeviceSaveInfo _info;
    private long _readTicks;
    private long _readBytes;
    /// <summary>Cancels the read run in flight (if any); created per run on this actor's thread.</summary>
    private CancellationTokenSource? _runCancel;

    private readonly ArrayPool<byte> _buffers;

    public DeviceSaver(int deviceIndex, IMigratableDevice device, WorkerPool pool, int chunkSize, int readAhead, ArrayPool<byte>? buffers = null)
    {
        _buffers = buffers ?? ArrayPool<byte>.Shared;
        _deviceIndex = deviceIndex;
        _device = device;
        _pool = pool;
        _chunkSize = chunkSize;
        _readAhead = readAhead;

        Receive<BeginPrecopySave>(_ =>
        {
            _coordinator = Sender;
            Start(() => { _device.StartPrecopy(); return Info(); });
        });
        Receive<BeginStopCopySave>(_ =>
        {
            _coordinator = Sender;
            _stopCopyRequested = true;
            _runCancel?.Cancel(); // a precopy run in flight ends after its current chunk
            RunDeferred();
        });
        Receive<GrantChunks>(g =>
        {
            _wanted += g.Count;
            Serve();
        });
        Receive<TransitionDone>(t =>
        {
            _busy = false;
            _info = t.Info;
            RunDeferred();
            ReadMore();
        });
        Receive<ReadDone>(OnReadDone);
        Receive<ReadRunEnded>(OnRunEnded);
        Receive<Repoll>(_ =>
        {
            if (!_stopCopy)
            {
                _dry = false;
                ReadMore();
            }
        });
        Receive<SaverOpFailed>(f =>
        {
            _busy = false;
            var abortPending = _abortRequested || _abortStarted;
            _aborted = true;
            ReturnAll();
            if (!abortPending)
            {
                _coordinator.Tell(new DeviceSaveFailed(_deviceIndex, $"device {_device.Identity.Id}: {f.Error.Message}"));
            }

            // An abort requested while the failed call was in flight runs now.
            RunDeferred();
        });
        Receive<AbortSave>(_ =>
        {
            _aborted = true;
            _runCancel?.Cancel();
            ReturnAll();
            if (_abortDone)
            {
                Sender.Tell(new SaveAborted(_deviceIndex, _abortError));
                return;
            }

            _abortWaiters.Add(Sender);
            _abortRequested = !_abortStarted;
            RunDeferred();
        });
        Receive<AbortDone>(d =>
        {
            _busy = false;
            _abortDone = true;
            _abortError = d.Error;
            foreach (var w in _abortWaiters)
            {
                w.Tell(new SaveAborted(_deviceIndex, _abortError));
            }

            _abortWaiters.Clear();
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="buffers">Where chunk buffers are rented (the migration's chunk pool; every SavedChunk returns its buffer there).</param>
    public static Props Props(int deviceIndex, IMigratableDevice device, WorkerPool pool, int chunkSize, int readAhead, ArrayPool<byte>? buffers = null) =>
        Akka.Actor.Props.Create(() => new DeviceSaver(deviceIndex, device, pool, chunkSize, readAhead, buffers));

    private DeviceSaveInfo Info() => new(
        _device.State == DeviceMigrationState.PreCopy ? _device.QueryPrecopy().Total : 0,
        _device.StopCopyRemainingBytes,
        0);

    /// <summary>
    /// Runs a requested transition once no device call is in flight: the device is driven by one thread at a
    /// time, and a transition must not overlap a read running on another pool thread.
    /// </summary>
    private void RunDeferred()
    {
        if (_busy)
        {
            return;
        }

        if (_abortRequested)
        {
            // The abort is the last device call of this saver: nothing is read or started after it (_aborted).
            _abortRequested = false;
            _abortStarted = true;
            var device = _device;
            _busy = true;
            _pool.Run(() => DeviceRecovery.ReturnToRunning(device))
                .PipeTo(Self, success: _ => new AbortDone(null),
                    failure: e => new AbortDone($"device {device.Identity.Id} did not return to running: {TaskFailures.Unwrap(e).Message}"));
            return;
        }

        if (_stopCopyRequested && !_stopCopy && !_aborted)
        {
            _stopCopy = true;
            _dry = false;
            Start(() => { _device.StartStopCopy(); return Info(); });
        }
    }

    private void Start(Func<DeviceSaveInfo> transition)
    {
        _busy = true;
        _pool.Run(() => new TransitionDone(transition()))
            .PipeTo(Self, failure: e => new SaverOpFailed(TaskFailures.Unwrap(e)));
    }

    /// <summary>
    /// Starts one read run on the pool: up to as many chunks as the read-ahead has room for, read back to back by one
    /// pool call (the device is driven by one thread at a time), each handed to this actor as soon as it is read
    /// (<see cref="ReadDone"/>, sent from the pool thread; the run owns nothing of this actor's state), then
    /// <see cref="ReadRunEnded"/>. One call per run instead of one per chunk: in the stop-copy phase the device's
    /// stream is the downtime's critical path, and a hop through the pool and the dispatcher per chunk cost more than
    /// the read itself on a loaded machine. A run stops early at the end of the state, when PRE_COPY has nothing
    /// now, or when <see cref="_runCancel"/> is cancelled (abort, or the switch to STOP_COPY waiting for the run).
    /// </summary>
    private void ReadMore()
    {
        var room = _readAhead - _ready.Count;
        if (_busy || _aborted || _ended || _dry || room <= 0 || (_stopCopyRequested && !_stopCopy))
        {
            return;
        }

        _busy = true;
        _runCancel = new CancellationTokenSource();
        var run = new DeviceReadRun(_device, _buffers, _chunkSize, room, _stopCopy, _runCancel.Token, Self);
        _pool.Run(run.Run).PipeTo(Self, failure: e => new SaverOpFailed(TaskFailures.Unwrap(e)));
    }

    private void OnRunEnded(ReadRunEnded r)
    {
        _busy = false;
        _runCancel = null;
        if (!_ended)
        {
            _info = r.Info;
        }

        if (r.Dry && !_aborted && !_stopCopyRequested)
        {
            // Nothing to read in PRE_COPY right now; look again a little later (the device may dirty more).
            _dry = true;
            Timers.StartSingleTimer("repoll", Repoll.Instance, _repollDelay);
        }

        RunDeferred();
        Serve();
    }

    private void OnReadDone(ReadDone r)
    {
        _info = r.Info;
        if (_aborted)
        {
            _buffers.Return(r.Buffer);
            return;
        }

        _readTicks += r.ReadTicks;
        _readBytes += r.Length;
        byte[] buffer = r.Buffer;
        if (r.Length == 0)
        {
            _buffers.Return(buffer);
            buffer = [];
        }

        _bytes += r.Length;
        if (!r.StopCopy)
        {
            _precopyBytes += r.Length;
        }

        _ready.Enqueue(new SavedChunk(_deviceIndex, _nextIndex++, r.StopCopy, r.Last, buffer, r.Length, _buffers));
        if (r.Last)
        {
            _ended = true;
            _coordinator.Tell(new DeviceSaved(_deviceIndex, r.Digest!, _nextIndex, _bytes, _precopyBytes));
        }

        Serve();
    }

    /// <summary>Measured read throughput of this device (bytes per ms of time inside its read calls); 0 until measured.</summary>
    private double ReadRate() => _readTicks <= 0 || _readBytes < MinRateSampleBytes ? 0 : _readBytes / (_readTicks * 1000.0 / Stopwatch.Frequency);

    private const long MinRateSampleBytes = 1 << 20;

    /// <summary>Pushes read chunks while grants are outstanding; when the device is dry, gives every grant back at once.</summary>
    private void Serve()
    {
        while (_wanted > 0 && _ready.Count > 0)
        {
            _wanted--;
            _coordinator.Tell(new ChunkReady(_ready.Dequeue(), _info with { ReadAheadBytes = ReadAheadBytes(), ReadBytesPerMs = ReadRate() }));
        }

        if (_wanted > 0 && _ready.Count == 0 && _dry && !_stopCopy)
        {
            _coordinator.Tell(new NoChunkNow(_deviceIndex, _info with { ReadBytesPerMs = ReadRate() }, _wanted));
            _wanted = 0;
        }

        ReadMore();
    }

    private long ReadAheadBytes() => _ready.Sum(c => (long)c.Length);

    private void ReturnAll()
    {
        while (_ready.TryDequeue(out var c))
        {
            c.ReturnBuffer();
        }
    }

    protected override void PostStop() => ReturnAll();
}
