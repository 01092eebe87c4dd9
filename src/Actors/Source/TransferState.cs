using Akka.Actor;
using Migration.Devices.Device;

namespace Migration.Actors.Source;

/// <summary>
/// The coordinator's data-path bookkeeping: which job goes to which channel next. It interleaves RAM packets
/// and device chunks (alternating when both are available, and round-robin over devices, so every device
/// converges and RAM keeps flowing), asks device savers for chunks only within the destination's credit,
/// and keeps every channel at most queue-depth jobs ahead. Sync and End go through per-channel control
/// queues so that they follow every job already given to that channel.
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
    private readonly bool[] _requested;
    private readonly bool[] _dry;
    private readonly bool[] _saved;
    private int _nextDevice;
    private int _nextChannel;
    private bool _preferDevice;

    public TransferState(IReadOnlyList<IActorRef> channels, IReadOnlyList<IActorRef> savers, IReadOnlyList<IMigratableDevice> devices,
        RamScanner scanner, DeviceCreditPool credit, int queueDepth)
    {
        _channels = channels;
        _savers = savers;
        _devices = devices;
        Scanner = scanner;
        Credit = credit;
        _queueDepth = queueDepth;
        _inFlight = new int[channels.Count];
        _control = channels.Select(_ => new Queue<SendJob>()).ToArray();
        _ready = devices.Select(_ => new Queue<SavedChunk>()).ToArray();
        _requested = new bool[devices.Count];
        _dry = new bool[devices.Count];
        _saved = new bool[devices.Count];
        Info = new DeviceSaveInfo[devices.Count];
    }

    public RamScanner Scanner { get; }
    public DeviceCreditPool Credit { get; }

    /// <summary>RAM pages of the current iteration are being handed out.</summary>
    public bool RamActive { get; set; }

    /// <summary>Savers may be asked for chunks (off while waiting for the switchover acknowledgement).</summary>
    public bool DeviceRequestsEnabled { get; set; }

    /// <summary>Latest save estimates per device, as reported by the savers.</summary>
    public DeviceSaveInfo[] Info { get; }

    /// <summary>Bytes of chunks read and waiting for a channel.</summary>
    public long ReadyBytes => _ready.Sum(q => q.Sum(c => (long)c.Length));

    /// <summary>Every device's Last chunk has been handed to a channel (nothing of any device is left to send).</summary>
    public bool AllDevicesSent => _saved.All(s => s) && DeviceQueuesEmpty;

    public bool DeviceQueuesEmpty => _ready.All(q => q.Count == 0) && _requested.All(r => !r);

    public int InFlightJobs => _inFlight.Sum();

    /// <summary>Queues a control job (Sync/End) on every channel, after everything given to it so far.</summary>
    public void EnqueueOnAllChannels(SendJob job)
    {
        foreach (var q in _control)
        {
            q.Enqueue(job);
        }
    }

    public void OnChunkReady(SavedChunk chunk, DeviceSaveInfo info)
    {
        var d = chunk.DeviceIndex;
        _requested[d] = false;
        Info[d] = info;
        Credit.Shrink(d, chunk.Length);
        _ready[d].Enqueue(chunk);
        if (chunk.Last)
        {
            // The saver has nothing more for this device: stop asking it.
            _saved[d] = true;
        }
    }

    public void OnNoChunk(int device, DeviceSaveInfo info)
    {
        _requested[device] = false;
        _dry[device] = true;
        Info[device] = info;
        Credit.Shrink(device, 0);
    }

    /// <summary>Devices that had nothing to send may be asked again.</summary>
    public void ClearDry() => Array.Clear(_dry);

    public void OnJobDone(int channel) => _inFlight[channel]--;

    /// <summary>Requests chunks within credit and hands jobs to every channel with room.</summary>
    public void Pump()
    {
        if (DeviceRequestsEnabled)
        {
            for (var k = 0; k < _devices.Count; k++)
            {
                var d = (_nextDevice + k) % _devices.Count;
                if (!_saved[d] && !_requested[d] && !_dry[d] && _ready[d].Count == 0 && Credit.CanReserveChunk(d))
                {
                    Credit.ReserveChunk(d);
                    _requested[d] = true;
                    _savers[d].Tell(RequestChunk.Instance);
                }
            }
        }

        for (var k = 0; k < _channels.Count; k++)
        {
            var ch = (_nextChannel + k) % _channels.Count;
            while (_inFlight[ch] < _queueDepth && NextJob(ch) is { } job)
            {
                _channels[ch].Tell(job);
                _inFlight[ch]++;
            }
        }

        _nextChannel = (_nextChannel + 1) % Math.Max(1, _channels.Count);
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

    /// <summary>Returns every buffer still held (on abort).</summary>
    public void DropAll()
    {
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
