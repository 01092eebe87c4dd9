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
/// write it returns the chunk's buffer to DeviceChunkBuffers and tells its parent gate (which returns the credit).
/// After the last chunk it validates the device (FinishResuming) and computes its digest.
/// State (queue, busy flag) is touched only on this actor's thread; write results come back as messages.
/// The queue holds only chunks whose bytes are reserved in the budget, so it is bounded by the budget.
/// A chunk dropped here after a device failure has its buffer returned and its budget bytes released by this actor:
/// whoever drops a chunk frees it. On stop the gate releases the budget of everything it handed over (see PostStop).
/// </summary>
public sealed class DeviceLoader : ReceiveActor
{
    private readonly int _deviceIndex;
    private readonly IMigratableDevice _device;
    private readonly WorkerPool _pool;
    private readonly DeviceBufferBudget _budget;
    private readonly Queue<DeviceChunkArrived> _pending = new();
    /// <summary>Chunks handed to the pool call in flight and not yet reported written, in index order.</summary>
    private readonly Queue<DeviceChunkArrived> _writing = new();
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
        Receive<BatchEnded>(_ =>
        {
            _busy = false;
            if (!_failed)
            {
                TryStartWrite();
            }
        });
    }

    public static Props Props(int deviceIndex, IMigratableDevice device, WorkerPool pool, DeviceBufferBudget budget) =>
        Akka.Actor.Props.Create(() => new DeviceLoader(deviceIndex, device, pool, budget));

    /// <summary>
    /// Hands every chunk queued now (in index order, at most <see cref="MaxBatch"/>) to one pool call that writes them
    /// one after the other and reports each as soon as it is written (<see cref="Written"/>, sent from the pool
    /// thread; the call touches none of this actor's state), then <see cref="BatchEnded"/>. One pool call per batch
    /// instead of one per chunk: in the stop-copy phase the last chunks' load is on the downtime's critical path, and
    /// a hop through the pool and the dispatcher per chunk cost more than the write on a loaded machine.
    /// </summary>
    private void TryStartWrite()
    {
        if (_busy || _pending.Count == 0)
        {
            return;
        }

        var batch = new DeviceChunkArrived[Math.Min(MaxBatch, _pending.Count)];
        for (var i = 0; i < batch.Length; i++)
        {
            batch[i] = _pending.Dequeue();
            _writing.Enqueue(batch[i]);
        }

        _busy = true;
        var device = _device;
        var self = Self;
        _pool.Run(() =>
            {
                foreach (var chunk in batch)
                {
                    var start = Stopwatch.GetTimestamp();
                    string? digest = null;
                    try
                    {
                        device.WriteChunk(chunk.Index, chunk.Buffer.AsSpan(0, chunk.Length));
                        if (chunk.Last)
                        {
                            device.FinishResuming();
                            digest = device.ComputeDigest().ToString("x32");
                        }
                    }
                    catch (Exception e)
                    {
                        // The chunks after it are not written: the actor drops them with the failed one.
                        self.Tell(new WriteFailed(chunk, TaskFailures.Unwrap(e)));
                        return BatchEnded.Instance;
                    }

                    self.Tell(new Written(chunk, Stopwatch.GetTimestamp() - start, digest));
                }

                return BatchEnded.Instance;
            })
            .PipeTo(Self, failure: e => new WriteFailed(batch[0], TaskFailures.Unwrap(e)));
    }

    /// <summary>Most chunks one pool call writes (bounds how long the pool thread is held by one device).</summary>
    private const int MaxBatch = 8;

    private void OnWritten(Written w)
    {
        if (!_writing.TryDequeue(out var head) || !ReferenceEquals(head, w.Chunk))
        {
            throw new InvalidOperationException($"device {_device.Identity.Id}: chunk {w.Chunk.Index} reported written out of order");
        }

        ReturnBuffer(w.Chunk);
        Context.Parent.Tell(new ChunkLoaded(w.Chunk.Index, w.Chunk.Length, w.LoadTicks));
        if (w.Digest is not null)
        {
            Context.Parent.Tell(new DeviceLoadedDigest(w.Digest));
        }
    }

    private void OnWriteFailed(WriteFailed f)
    {
        if (_failed)
        {
            return; // the batch's failure was already reported (a failed pool call after a reported write failure)
        }

        _failed = true;
        // The failed chunk and every later one of its batch were not written: free them (whoever drops a chunk frees it).
        while (_writing.TryDequeue(out var c))
        {
            Drop(c);
        }

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
            DeviceChunkBuffers.Shared.Return(c.Buffer);
        }
    }

    /// <summary>
    /// Stopped with its gate: returns the buffers of the chunks not yet written. Their budget bytes are released by the
    /// gate (ReorderGate.PostStop counts every chunk it handed over and that was not reported loaded, including those
    /// still in this mailbox), so nothing is released here. A chunk still being written on the pool keeps its buffer
    /// (the write may still read it; the GC takes it).
    /// </summary>
    protected override void PostStop()
    {
        while (_pending.TryDequeue(out var c))
        {
            ReturnBuffer(c);
        }
    }

    private sealed record Written(DeviceChunkArrived Chunk, long LoadTicks, string? Digest) : INoSerializationVerificationNeeded;

    private sealed record WriteFailed(DeviceChunkArrived Chunk, Exception Error) : INoSerializationVerificationNeeded;

    /// <summary>The pool call of a batch returned (every Written or WriteFailed of it was sent before).</summary>
    private sealed record BatchEnded : INoSerializationVerificationNeeded
    {
        public static readonly BatchEnded Instance = new();
    }
}

/// <summary>Loader -> gate: the device finished loading; its digest.</summary>
public sealed record DeviceLoadedDigest(string Digest) : INoSerializationVerificationNeeded;
