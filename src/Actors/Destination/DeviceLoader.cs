using System.Buffers;
using System.Diagnostics;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Devices.Device;
using Migration.Transport.Flow;

namespace Migration.Actors.Destination;

/// <summary>
/// Writes one device's chunks, in the order its gate releases them, one write at a time, on the
/// migration's worker pool (never on a channel's receive path, never on Akka's dispatcher). After each
/// write it returns the chunk's buffer to ArrayPool and tells its parent gate (which returns the credit).
/// After the last chunk it validates the device (FinishResuming) and computes its digest.
/// State (queue, busy flag) is touched only on this actor's thread; write results come back as messages.
/// The queue holds only chunks whose bytes are reserved in the budget, so it is bounded by the budget.
/// A chunk dropped here (after a device failure, or on stop) has its buffer returned and its budget bytes
/// released by this actor: whoever drops a chunk frees it.
/// </summary>
public sealed class DeviceLoader : ReceiveActor
{
    private readonly int _deviceIndex;
    private readonly IMigratableDevice _device;
    private readonly WorkerPool _pool;
    private readonly DeviceBufferBudget _budget;
    private readonly Queue<DeviceChunkArrived> _pending = new();
    private DeviceChunkArrived? _writing;
    private bool _busy;
    private bool _failed;

    public DeviceLoader(int deviceIndex, IMigratableDevice device, WorkerPool pool, DeviceBufferBudget budget)
    {
        _deviceIndex = deviceIndex;
        _device = device;
        _pool = pool;
        _budget = budget;
        Receive<LoadChunk>(m =>
        {
            if (_failed)
            {
                Drop(m.Chunk);
                return;
            }

            _pending.Enqueue(m.Chunk);
            TryStartWrite();
        });
        Receive<Written>(OnWritten);
        Receive<WriteFailed>(OnWriteFailed);
    }

    public static Props Props(int deviceIndex, IMigratableDevice device, WorkerPool pool, DeviceBufferBudget budget) =>
        Akka.Actor.Props.Create(() => new DeviceLoader(deviceIndex, device, pool, budget));

    private void TryStartWrite()
    {
        if (_busy || _pending.Count == 0)
        {
            return;
        }

        var chunk = _pending.Dequeue();
        _busy = true;
        _writing = chunk;
        var device = _device;
        _pool.Run(() =>
            {
                var start = Stopwatch.GetTimestamp();
                device.WriteChunk(chunk.Index, chunk.Buffer.AsSpan(0, chunk.Length));
                string? digest = null;
                if (chunk.Last)
                {
                    device.FinishResuming();
                    digest = device.ComputeDigest().ToString("x32");
                }

                return new Written(chunk, Stopwatch.GetTimestamp() - start, digest);
            })
            .PipeTo(Self, failure: e => new WriteFailed(chunk, TaskFailures.Unwrap(e)));
    }

    private void OnWritten(Written w)
    {
        _busy = false;
        _writing = null;
        ReturnBuffer(w.Chunk);
        Context.Parent.Tell(new ChunkLoaded(w.Chunk.Index, w.Chunk.Length, w.LoadTicks));
        if (w.Digest is not null)
        {
            Context.Parent.Tell(new DeviceLoadedDigest(w.Digest));
        }

        TryStartWrite();
    }

    private void OnWriteFailed(WriteFailed f)
    {
        _busy = false;
        _failed = true;
        _writing = null;
        Drop(f.Chunk);
        DrainPending();
        Context.Parent.Tell(new DeviceLoadFailed(_deviceIndex, $"device {_device.Identity.Id}: {f.Error.Message}"));
    }

    private void DrainPending()
    {
        while (_pending.TryDequeue(out var c))
        {
            Drop(c);
        }
    }

    /// <summary>Frees a chunk that will never be loaded: its buffer and its budget bytes.</summary>
    private void Drop(DeviceChunkArrived c)
    {
        _budget.Release(c.Length);
        ReturnBuffer(c);
    }

    private static void ReturnBuffer(DeviceChunkArrived c)
    {
        if (c.Buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(c.Buffer);
        }
    }

    protected override void PostStop()
    {
        DrainPending();
        if (_writing is { } w)
        {
            // Still being written on the pool: release its budget now; its buffer is not returned (the write may
            // still read it) and is left to the GC.
            _budget.Release(w.Length);
        }
    }

    private sealed record Written(DeviceChunkArrived Chunk, long LoadTicks, string? Digest) : INoSerializationVerificationNeeded;

    private sealed record WriteFailed(DeviceChunkArrived Chunk, Exception Error) : INoSerializationVerificationNeeded;
}

/// <summary>Loader -> gate: the device finished loading; its digest.</summary>
public sealed record DeviceLoadedDigest(string Digest) : INoSerializationVerificationNeeded;
