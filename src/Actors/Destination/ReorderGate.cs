using System.Buffers;
using System.Diagnostics;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Actors.Messages;
using Migration.Devices.Device;
using Migration.Transport.Flow;

namespace Migration.Actors.Destination;

/// <summary>
/// Per-device reorder and back-pressure gate on the destination. Chunks of one device arrive out of order
/// over the channels; the gate holds the early ones and releases chunks to its child <see cref="DeviceLoader"/>
/// strictly in index order. When the loader has written a chunk the gate releases its bytes from the
/// migration's <see cref="DeviceBufferBudget"/> and returns the same bytes as credit to the source, which
/// may then send more. So the bytes held here never exceed the budget, and the receive channels never
/// have to stop reading. Credits go out in batches (<see cref="CreditBatcher"/>: one DeviceCredit per range of
/// consecutive loaded chunks, by count, bytes or age, and on a timer when no further load follows), not one
/// cluster message per chunk; the budget itself is released per chunk, at once.
/// Violations (a duplicate index, an index after the last chunk) are reported to the owner, which fails
/// the migration. All state is touched only on this actor's thread.
/// </summary>
public sealed class ReorderGate : ReceiveActor, IWithTimers
{
    private readonly int _deviceIndex;
    private readonly string _deviceId;
    private readonly Guid _migrationId;
    private readonly IActorRef _owner;
    private readonly IActorRef _creditTarget;
    private readonly DeviceBufferBudget _budget;
    private readonly IActorRef _loader;
    private readonly Dictionary<long, DeviceChunkArrived> _held = new();
    private long _next;
    private long _lastIndex = -1;
    private long _bufferedBytes;
    private long _peakBufferedBytes;
    private long _outOfOrder;
    private long _loadedChunks;
    private long _loadedBytes;
    private long _loadTicks;
    private int _queuedToLoader;
    private bool _stopped;
    private readonly CreditBatcher _credits;

    public ReorderGate(int deviceIndex, Guid migrationId, IMigratableDevice device, WorkerPool pool, DeviceBufferBudget budget, IActorRef owner, IActorRef creditTarget,
        CreditBatchPolicy? batching = null)
    {
        _credits = new CreditBatcher(batching ?? CreditBatchPolicy.PerChunk);
        _deviceIndex = deviceIndex;
        _deviceId = device.Identity.Id;
        _migrationId = migrationId;
        _owner = owner;
        _creditTarget = creditTarget;
        _budget = budget;
        _loader = Context.ActorOf(DeviceLoader.Props(deviceIndex, device, pool, budget), "loader");

        Receive<DeviceChunkArrived>(OnArrived);
        Receive<ChunkLoaded>(OnLoaded);
        Receive<CreditDue>(_ => FlushCredit());
        Receive<DeviceLoadedDigest>(d => _owner.Tell(new DeviceLoaded(_deviceIndex, d.Digest, Stats())));
        Receive<DeviceLoadFailed>(f =>
        {
            // The loader dropped (and released) everything it had queued; the gate drops what it holds.
            _stopped = true;
            DropHeld();
            _bufferedBytes = 0;
            _owner.Tell(f);
        });
        Receive<GetGateReceipt>(r => Sender.Tell(new GateReceipt(r.Channel, _deviceIndex, _next, _held.Keys.Order().ToArray())));
        Receive<GetGateSnapshot>(_ => Sender.Tell(new GateSnapshot(_deviceIndex, _bufferedBytes, _peakBufferedBytes, _outOfOrder, _next, _loadedChunks)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="batching">How credits are batched; null = one DeviceCredit per chunk.</param>
    public static Props Props(int deviceIndex, Guid migrationId, IMigratableDevice device, WorkerPool pool, DeviceBufferBudget budget, IActorRef owner, IActorRef creditTarget,
        CreditBatchPolicy? batching = null) =>
        Akka.Actor.Props.Create(() => new ReorderGate(deviceIndex, migrationId, device, pool, budget, owner, creditTarget, batching));

    private void OnArrived(DeviceChunkArrived c)
    {
        if (_stopped)
        {
            Drop(c);
            return;
        }

        string? violation = null;
        if (c.Index < _next || _held.ContainsKey(c.Index))
        {
            violation = $"channel {c.ChannelIndex}: device {_deviceId}: duplicate chunk index {c.Index} (next expected {_next})";
        }
        else if (_lastIndex >= 0 && c.Index > _lastIndex)
        {
            violation = $"channel {c.ChannelIndex}: device {_deviceId}: chunk index {c.Index} after the last chunk {_lastIndex}";
        }
        else if (c.Last && (_lastIndex >= 0 || _held.Keys.Any(k => k > c.Index)))
        {
            violation = $"channel {c.ChannelIndex}: device {_deviceId}: second or early last-chunk mark at index {c.Index}";
        }

        if (violation is not null)
        {
            Drop(c);
            DropHeld();
            _stopped = true;
            _owner.Tell(new GateViolation(_deviceIndex, violation));
            return;
        }

        _bufferedBytes += c.Length;
        _peakBufferedBytes = Math.Max(_peakBufferedBytes, _bufferedBytes);
        if (c.Last)
        {
            _lastIndex = c.Index;
        }

        if (c.Index != _next)
        {
            // Arrived before a lower index of the same device: hold it.
            _outOfOrder++;
            _held.Add(c.Index, c);
            return;
        }

        _loader.Tell(new LoadChunk(c));
        _queuedToLoader++;
        _next++;
        while (_held.Remove(_next, out var following))
        {
            _loader.Tell(new LoadChunk(following));
            _queuedToLoader++;
            _next++;
        }
    }

    private void OnLoaded(ChunkLoaded l)
    {
        _bufferedBytes -= l.Length;
        _queuedToLoader--;
        _loadedChunks++;
        _loadedBytes += l.Length;
        _loadTicks += l.LoadTicks;
        // Release before crediting: the source may send again as soon as the credit arrives.
        _budget.Release(l.Length);
        if (_credits.Add(l.Index, l.Length, l.LoadTicks, Stopwatch.GetTimestamp()) || l.Index == _lastIndex)
        {
            FlushCredit();
        }
        else if (_queuedToLoader == 0 && !Timers.IsTimerActive("credit"))
        {
            // No further load is queued to complete the batch: return it after the interval at the latest.
            Timers.StartSingleTimer("credit", CreditDue.Instance, _credits.Policy.Interval);
        }
    }

    /// <summary>Sends the batched credit, if any, as one DeviceCredit naming its range of chunks.</summary>
    private void FlushCredit()
    {
        Timers.Cancel("credit");
        if (_credits.IsEmpty)
        {
            return;
        }

        var (first, chunks, bytes, ticks) = _credits.Take();
        _creditTarget.Tell(new DeviceCredit(_migrationId, _deviceIndex, bytes, first, ticks, _bufferedBytes, chunks));
    }

    private DeviceLoadStats Stats() => new(
        _deviceId, _loadedChunks, _loadedBytes, _outOfOrder, _peakBufferedBytes,
        _loadTicks * 1000.0 / Stopwatch.Frequency);

    private void Drop(DeviceChunkArrived c)
    {
        _budget.Release(c.Length);
        if (c.Buffer.Length > 0)
        {
            DeviceChunkBuffers.Shared.Return(c.Buffer);
        }
    }

    /// <summary>Frees every held out-of-order chunk (the device will never get them).</summary>
    private void DropHeld()
    {
        foreach (var c in _held.Values)
        {
            _bufferedBytes -= c.Length;
            Drop(c);
        }

        _held.Clear();
    }

    /// <summary>
    /// Stopped (the migration ended): frees the held chunks, and releases the budget of every chunk it handed to its
    /// loader that was not reported loaded. The gate, not the loader, releases those: a LoadChunk still in the loader's
    /// mailbox when it stops goes to dead letters (the loader never sees it), and a ChunkLoaded still in this mailbox is
    /// never processed, so only this count covers both without a double release. The loader returns the buffers it
    /// holds and releases nothing when stopped (DeviceLoader.PostStop).
    /// </summary>
    protected override void PostStop()
    {
        DropHeld();
        if (_bufferedBytes > 0)
        {
            _budget.Release(_bufferedBytes);
            _bufferedBytes = 0;
        }
    }

    /// <summary>Timer: the batched credit waited its interval without a further load.</summary>
    private sealed record CreditDue : INoSerializationVerificationNeeded
    {
        public static readonly CreditDue Instance = new();
    }
}
