using System.Buffers;
using Migration.Transport.Channels;
using Migration.Transport.Flow;
using Migration.Transport.Wire;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// A test <see cref="IInboundPacketSink"/>: reserves device bytes in a real <see cref="DeviceBufferBudget"/> (releases
/// only those of undelivered chunks, so <see cref="DeviceBufferBudget.HeldBytes"/> is the sum of accepted chunks), copies every device
/// chunk and returns its buffer to ArrayPool, and records Sync iterations. Syncs complete at once, or, with
/// <see cref="HoldSyncs"/>, only when <see cref="ReleaseSyncs"/> is called. Thread-safe (the loop runs on the pool).
/// </summary>
internal sealed class RecordingPacketSink(long budgetBytes) : IInboundPacketSink
{
    private readonly Lock _gate = new();
    private readonly List<int> _reservations = [];
    private readonly List<int> _released = [];
    private readonly List<(DeviceChunkHeader Header, byte[] Payload)> _chunks = [];
    private readonly List<uint> _syncs = [];
    private readonly List<TaskCompletionSource> _held = [];
    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DeviceBufferBudget Budget { get; } = new(budgetBytes);

    /// <summary>When true, OnSyncAsync returns a task that completes only on <see cref="ReleaseSyncs"/>.</summary>
    public bool HoldSyncs { get; init; }

    /// <summary>Completes when the first Sync was read.</summary>
    public Task FirstSync => _firstSync.Task;

    public int[] Reservations
    {
        get { lock (_gate) return [.. _reservations]; }
    }

    public (DeviceChunkHeader Header, byte[] Payload)[] Chunks
    {
        get { lock (_gate) return [.. _chunks]; }
    }

    public uint[] Syncs
    {
        get { lock (_gate) return [.. _syncs]; }
    }

    public bool TryReserveDeviceBytes(int length, out string budgetState)
    {
        lock (_gate)
        {
            if (Budget.TryReserve(length))
            {
                _reservations.Add(length);
                budgetState = "";
                return true;
            }

            budgetState = $"{Budget.HeldBytes} of budget {Budget.BudgetBytes} bytes already held";
            return false;
        }
    }

    public void ReleaseDeviceBytes(int length)
    {
        lock (_gate)
        {
            Budget.Release(length);
            _released.Add(length);
        }
    }

    /// <summary>Reservations given back because their chunk was not delivered.</summary>
    public int[] Released
    {
        get { lock (_gate) return [.. _released]; }
    }

    public void OnDeviceChunk(in DeviceChunkHeader header, byte[] buffer)
    {
        var copy = buffer.AsSpan(0, (int)header.Length).ToArray();
        if (header.Length > 0)
        {
            DeviceChunkBuffers.Shared.Return(buffer);
        }

        lock (_gate)
        {
            _chunks.Add((header, copy));
        }
    }

    public ValueTask OnSyncAsync(uint iteration)
    {
        TaskCompletionSource? wait = null;
        lock (_gate)
        {
            _syncs.Add(iteration);
            if (HoldSyncs)
            {
                wait = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _held.Add(wait);
            }
        }

        _firstSync.TrySetResult();
        return wait is null ? ValueTask.CompletedTask : new ValueTask(wait.Task);
    }

    /// <summary>Completes every held Sync (the barrier opens).</summary>
    public void ReleaseSyncs()
    {
        TaskCompletionSource[] held;
        lock (_gate)
        {
            held = [.. _held];
            _held.Clear();
        }

        foreach (var t in held)
        {
            t.TrySetResult();
        }
    }
}
