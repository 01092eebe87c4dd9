using Akka.Actor;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Device;

namespace Migration.Actors.Source;

/// <summary>
/// The coordinator's data-path bookkeeping: which job goes to which channel next. It interleaves RAM packets
/// and device chunks (alternating when both are available, and round-robin over devices, so every device
/// converges and RAM keeps flowing), grants device savers chunks only within the destination's credit (in bulk:
/// up to grant-ahead chunks granted or read and waiting per device, so a saver streams without a request per
/// chunk), and keeps every channel at most queue-depth jobs ahead. Sync and End go through per-channel control
/// queues so that they follow every job already given to that channel.
/// For losing a channel it records what each channel carries (<see cref="RamSendLog"/>, <see cref="SentChunkLedger"/>),
/// takes a lost channel out of the rotation, queues the chunks it lost for resending ahead of new ones, and puts the
/// channel back with the Syncs its destination side has not seen.
/// Owned by the MigrationCoordinator; touched only on its thread.
/// </summary>
public sealed class TransferState
{
    private readonly IReadOnlyList<IActorRef> _channels;
    private readonly IReadOnlyList<IActorRef> _savers;
    private readonly IReadOnlyList<IMigratableDevice> _devices;
    private readonly int _queueDepth;
    private readonly int[] _inFlight;
    private readonly Queue<SendJob>[] _control;
    private readonly Queue<SavedChunk>[] _ready;
    private readonly int[] _granted;
    private readonly int _grantAhead;
    private readonly bool[] _dry;
    private readonly bool[] _saved;
    private readonly bool[] _up;
    private readonly Queue<SavedChunk> _resend = new();
    private uint _lastSync;
    private int _nextDevice;
    private int _nextChannel;
    private bool _preferDevice;

    public TransferState(IReadOnlyList<IActorRef> channels, IReadOnlyList<IActorRef> savers, IReadOnlyList<IMigratableDevice> devices,
        RamScanner scanner, DeviceCreditPool credit, int queueDepth, int grantAhead = 1)
    {
        _grantAhead = Math.Max(1, grantAhead);
        _channels = channels;
        _savers = savers;
        _devices = devices;
        Scanner = scanner;
        Credit = credit;
        _queueDepth = queueDepth;
        _inFlight = new int[channels.Count];
        _control = channels.Select(_ => new Queue<SendJob>()).ToArray();
        _ready = devices.Select(_ => new Queue<SavedChunk>()).ToArray();
        _granted = new int[devices.Count];
        _dry = new bool[devices.Count];
        _saved = new bool[devices.Count];
        _up = Enumerable.Repeat(true, channels.Count).ToArray();
        Info = new DeviceSaveInfo[devices.Count];
        Log = new RamSendLog(scanner.Blocks);
        Ledger = new SentChunkLedger(devices.Count);
    }

    /// <summary>Pages each channel carried in iterations the destination has not confirmed.</summary>
    public RamSendLog Log { get; }

    /// <summary>Device chunks sent and not yet credited (owns their buffers).</summary>
    public SentChunkLedger Ledger { get; }

    /// <summary>The precopy bandwidth limit: a job is handed to a channel only when it allows (unlimited by default).</summary>
    public BandwidthPacer Pacer { get; } = new(0);

    /// <summary>Every channel is connected (none lost and waiting to reconnect).</summary>
    public bool AllChannelsUp => _up.All(u => u);

    public bool IsUp(int channel) => _up[channel];

    public RamScanner Scanner { get; }
    public DeviceCreditPool Credit { get; }

    /// <summary>RAM pages of the current iteration are being handed out.</summary>
    public bool RamActive { get; set; }

    /// <summary>Savers may be asked for chunks (off while waiting for the switchover acknowledgement).</summary>
    public bool DeviceRequestsEnabled { get; set; }

    /// <summary>Latest save estimates per device, as reported by the savers.</summary>
    public DeviceSaveInfo[] Info { get; }

    /// <summary>Bytes of chunks read (or lost and to be resent) and waiting for a channel.</summary>
    public long ReadyBytes => _ready.Sum(q => q.Sum(c => (long)c.Length)) + _resend.Sum(c => (long)c.Length);

    /// <summary>Bytes of device <paramref name="device"/>'s chunks read (or lost and to be resent) and waiting for a channel.</summary>
    public long ReadyBytesOf(int device) =>
        _ready[device].Sum(c => (long)c.Length) + _resend.Where(c => c.DeviceIndex == device).Sum(c => (long)c.Length);

    /// <summary>Every device's Last chunk has been handed to a channel (nothing of any device is left to send).</summary>
    public bool AllDevicesSent => _saved.All(s => s) && DeviceQueuesEmpty;

    public bool DeviceQueuesEmpty => _ready.All(q => q.Count == 0) && _granted.All(g => g == 0) && _resend.Count == 0;

    public int InFlightJobs => _inFlight.Sum();

    /// <summary>Queues a control job (Sync/End) on every channel, after everything given to it so far.</summary>
    public void EnqueueOnAllChannels(SendJob job)
    {
        if (job is SyncJob sync)
        {
            _lastSync = sync.Iteration;
        }

        foreach (var q in _control)
        {
            q.Enqueue(job);
        }
    }

    /// <summary>
    /// The channel's connection was lost: it gets no more jobs until <see cref="ChannelUp"/>. Jobs it had are gone
    /// with the connection (its pages are in the log, its chunks in the ledger), and so are its queued Syncs.
    /// </summary>
    public void ChannelDown(int channel)
    {
        _up[channel] = false;
        _inFlight[channel] = 0;
        _control[channel].Clear();
    }

    /// <summary>
    /// The channel reconnected, and its previous connection delivered every Sync up to <paramref name="delivered"/>:
    /// it first sends Sync(delivered+1 .. last queued), so the destination's barriers see it in every iteration.
    /// </summary>
    public void ChannelUp(int channel, uint delivered)
    {
        _control[channel].Clear();
        for (var k = delivered + 1; k <= _lastSync; k++)
        {
            _control[channel].Enqueue(new SyncJob(k));
        }

        _up[channel] = true;
    }

    /// <summary>Chunks a lost connection took with it: they go out again before any new chunk (their credit is still held).</summary>
    public void Resend(IEnumerable<SavedChunk> chunks)
    {
        foreach (var c in chunks)
        {
            _resend.Enqueue(c);
        }
    }

    /// <summary>Grants outstanding at device <paramref name="device"/>'s saver (credit reserved, chunk not read yet).</summary>
    public int Granted(int device) => _granted[device];

    /// <summary>One granted chunk arrived: its reservation shrinks to the chunk's length.</summary>
    public void OnChunkReady(SavedChunk chunk, DeviceSaveInfo info)
    {
        var d = chunk.DeviceIndex;
        if (_granted[d] < 1)
        {
            throw new InvalidOperationException($"device {d}: chunk {chunk.Index} arrived without a grant");
        }

        _granted[d]--;
        Info[d] = info;
        Credit.Shrink(d, chunk.Length);
        _ready[d].Enqueue(chunk);
        if (chunk.Last)
        {
            // The saver has nothing more for this device: stop granting, free the grants it will not use, and let the
            // devices still streaming share the budget without it.
            _saved[d] = true;
            ReleaseGrants(d, _granted[d]);
            Credit.DeviceEnded(d);
        }
    }

    /// <summary>The saver had no precopy data and gave <paramref name="returned"/> grants back.</summary>
    public void OnNoChunk(int device, DeviceSaveInfo info, int returned = 1)
    {
        _dry[device] = true;
        Info[device] = info;
        ReleaseGrants(device, Math.Min(returned, _granted[device]));
    }

    private void ReleaseGrants(int device, int count)
    {
        for (var i = 0; i < count; i++)
        {
            Credit.Shrink(device, 0);
        }

        _granted[device] -= count;
    }

    /// <summary>Devices that had nothing to send may be asked again.</summary>
    public void ClearDry() => Array.Clear(_dry);

    public void OnJobDone(int channel) => _inFlight[channel]--;

    /// <summary>Hands jobs to every channel with room, then grants savers chunks within credit.</summary>
    public void Pump()
    {
        for (var k = 0; k < _channels.Count; k++)
        {
            var ch = (_nextChannel + k) % _channels.Count;
            while (_up[ch] && _inFlight[ch] < _queueDepth && Pacer.CanSend() && NextJob(ch) is { } job)
            {
                switch (job)
                {
                    case RamJob ram:
                        Log.Record(ch, ram);
                        Pacer.Spend((long)ram.Count * Migration.Devices.Ram.RamBlock.PageSize);
                        break;
                    case DeviceChunkJob chunk:
                        // From here the ledger owns the buffer (until credited); the channel only reads it.
                        Ledger.Sent(chunk.Chunk, ch);
                        Pacer.Spend(chunk.Chunk.Length);
                        break;
                }

                _channels[ch].Tell(job);
                _inFlight[ch]++;
            }
        }

        _nextChannel = (_nextChannel + 1) % Math.Max(1, _channels.Count);

        // After the channels took what was ready: the grant is topped up for the chunks that just left.
        if (DeviceRequestsEnabled)
        {
            for (var k = 0; k < _devices.Count; k++)
            {
                var d = (_nextDevice + k) % _devices.Count;
                if (_saved[d] || _dry[d])
                {
                    continue;
                }

                var grant = 0;
                while (_granted[d] + grant + _ready[d].Count < _grantAhead && Credit.CanReserveChunk(d))
                {
                    Credit.ReserveChunk(d);
                    grant++;
                }

                if (grant > 0)
                {
                    _granted[d] += grant;
                    _savers[d].Tell(new GrantChunks(grant));
                }
            }
        }
    }

    private SendJob? NextJob(int channel)
    {
        if (_control[channel].Count > 0)
        {
            return _control[channel].Dequeue();
        }

        _preferDevice = !_preferDevice;
        if (_preferDevice && TakeDeviceChunk() is { } first)
        {
            return first;
        }

        if (RamActive && Scanner.TryNext(out var ram))
        {
            return ram;
        }

        return TakeDeviceChunk();
    }

    private DeviceChunkJob? TakeDeviceChunk()
    {
        if (_resend.TryDequeue(out var lost))
        {
            return new DeviceChunkJob(lost, (uint)_devices[lost.DeviceIndex].Identity.Instance);
        }

        for (var k = 0; k < _ready.Length; k++)
        {
            var d = (_nextDevice + k) % _ready.Length;
            if (_ready[d].TryDequeue(out var chunk))
            {
                _nextDevice = (d + 1) % _ready.Length;
                return new DeviceChunkJob(chunk, (uint)_devices[d].Identity.Instance);
            }
        }

        return null;
    }

    /// <summary>Returns every buffer still held (on abort); chunks already handed to a channel are abandoned to the GC.</summary>
    public void DropAll()
    {
        while (_resend.TryDequeue(out var r))
        {
            r.ReturnBuffer();
        }

        Ledger.Abandon();
        foreach (var q in _ready)
        {
            while (q.TryDequeue(out var c))
            {
                c.ReturnBuffer();
            }
        }

        while (Scanner.TryNext(out var job))
        {
            job.ReturnPages();
        }
    }
}
