using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Devices.Ram;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Flow;
using Migration.Transport.Wire;

namespace Migration.Actors.Destination;

/// <summary>
/// One multifd channel of an incoming migration. Owns the socket and its receive loop (a PacketReceiver
/// running as a task): RAM pages go straight into guest RAM from the loop; device chunks go to their device's
/// ReorderGate by Tell (never loaded here); Sync waits at the migration's barrier. The loop never blocks on
/// a device: every chunk the sender may send fits in the budget, so the loop always keeps reading.
/// A watchdog closes the connection if it receives nothing for channel-idle-timeout outside a barrier.
/// When the loop ends it reports the outcome: End (RecvChannelEnded), a lost connection with the last Sync it delivered
/// (RecvChannelLost: the source may reconnect the channel), or a protocol violation (RecvChannelFailed).
/// </summary>
public sealed class RecvChannel : ReceiveActor, IWithTimers
{
    private readonly int _index;
    private readonly IChannelIo _socket;
    private readonly IActorRef _owner;
    private readonly TimeSpan _idleTimeout;
    private readonly CancellationTokenSource _cts = new();
    private readonly PacketReceiver _receiver;
    private readonly ChannelSink _sink;
    private readonly IRamCodec? _decoder;

    public RecvChannel(int index, IChannelIo socket, ReceiveLimits limits, IReadOnlyList<RamBlock> blocks, CodecId codec, int codecLevel,
        IReadOnlyList<IActorRef> gates, DeviceBufferBudget budget, IActorRef owner, TimeSpan idleTimeout, uint firstIteration = 1, ushort connection = 0,
        IRamWriteObserver? written = null)
    {
        _index = index;
        _socket = socket;
        _owner = owner;
        _idleTimeout = idleTimeout;
        _sink = new ChannelSink(index, gates, budget, owner);
        // Owned by this channel, used only by the receive loop, disposed after it ended (PreStart).
        _decoder = codec == CodecId.None ? null : RamCodecRegistry.Default.Create(codec, codecLevel);
        _receiver = new PacketReceiver(socket, limits.ForChannel(index), blocks, _decoder, _sink, firstIteration, written);
        var receiver = _receiver;
        Receive<LoopEnded>(e =>
        {
            _owner.Tell(new RecvChannelEnded(_index, receiver.NormalPages, receiver.ZeroPages, receiver.WireBytes));
            Become(Done);
        });
        Receive<LoopFailed>(f =>
        {
            // The loop has ended: nothing of this connection touches guest RAM or the budget any more.
            var reason = _idleReason ?? Describe(f.Error);
            _owner.Tell(IsConnectionLoss(f.Error) || _idleReason is not null
                ? new RecvChannelLost(_index, connection, receiver.Iteration - 1, reason, receiver.NormalPages, receiver.ZeroPages)
                : new RecvChannelFailed(_index, reason));
            Become(Done);
        });
        Receive<IdleCheck>(_ =>
        {
            var idle = Stopwatch.GetElapsedTime(receiver.LastActivity);
            if (_idleReason is null && !_sink.AtBarrier && idle > _idleTimeout)
            {
                // Close the connection; the loop fails on it and LoopFailed reports the channel lost.
                _idleReason = $"channel {_index}: nothing received for {idle.TotalSeconds:0.#} s (idle timeout {_idleTimeout.TotalSeconds:0.#} s)";
                _socket.Dispose();
                _cts.Cancel();
            }
        });
    }

    private string? _idleReason;

    /// <summary>
    /// A broken or closed connection (recoverable: the source may reconnect the channel), as opposed to a protocol
    /// violation (corrupt, malformed or out-of-credit data), which fails the migration.
    /// </summary>
    private static bool IsConnectionLoss(Exception e) =>
        TaskFailures.Unwrap(e) is ChannelClosedException or System.Net.Sockets.SocketException or IOException or ObjectDisposedException or OperationCanceledException;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(int index, IChannelIo socket, ReceiveLimits limits, IReadOnlyList<RamBlock> blocks, CodecId codec, int codecLevel,
        IReadOnlyList<IActorRef> gates, DeviceBufferBudget budget, IActorRef owner, TimeSpan idleTimeout, uint firstIteration = 1, ushort connection = 0,
        IRamWriteObserver? written = null) =>
        Akka.Actor.Props.Create(() => new RecvChannel(index, socket, limits, blocks, codec, codecLevel, gates, budget, owner, idleTimeout, firstIteration, connection, written));

    protected override void PreStart()
    {
        var receiver = _receiver;
        var ct = _cts.Token;
        // The owner reads the receiver's counters (thread-safe reads) for the node's metrics.
        _owner.Tell(new RecvChannelStarted(_index, receiver));
        var loop = Task.Run(() => receiver.RunAsync(ct), ct);
        loop.PipeTo(Self, success: _ => LoopEnded.Instance, failure: e => new LoopFailed(e));
        // The receiver's buffers are returned, and the decoder's native context freed, once the loop can no longer
        // touch them (on the thread that ends the loop; neither is actor state).
        var decoder = _decoder;
        loop.ContinueWith(_ =>
        {
            receiver.Dispose();
            decoder?.Dispose();
        }, TaskScheduler.Default);
        Timers.StartPeriodicTimer("idle", IdleCheck.Instance, TimeSpan.FromMilliseconds(Math.Max(100, _idleTimeout.TotalMilliseconds / 4)));
    }

    private void Done()
    {
        ReceiveAny(_ => { });
    }

    private string Describe(Exception e)
    {
        e = TaskFailures.Unwrap(e);
        return e switch
        {
            ProtocolViolationException or ChannelClosedException => e.Message,
            OperationCanceledException => $"channel {_index}: cancelled",
            _ => $"channel {_index}: {e.GetType().Name}: {e.Message}",
        };
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _sink.ReleaseBarrier();
        _socket.Dispose();
    }

    /// <summary>The loop's view of the migration; runs on the loop, forwards by Tell.</summary>
    private sealed class ChannelSink(int index, IReadOnlyList<IActorRef> gates, DeviceBufferBudget budget, IActorRef owner) : IInboundPacketSink
    {
        private TaskCompletionSource? _barrier;

        public bool AtBarrier => Volatile.Read(ref _barrier) is { Task.IsCompleted: false };

        public bool TryReserveDeviceBytes(int length, out string budgetState)
        {
            if (budget.TryReserve(length))
            {
                budgetState = "";
                return true;
            }

            budgetState = $"{budget.HeldBytes} of budget {budget.BudgetBytes} bytes already held";
            return false;
        }

        public void ReleaseDeviceBytes(int length) => budget.Release(length);

        public void OnDeviceChunk(in DeviceChunkHeader header, byte[] buffer)
        {
            // The device index was validated against the migration's device table by DeviceChunkHeader.TryRead.
            gates[header.DeviceIndex].Tell(new DeviceChunkArrived(header.DeviceIndex, (long)header.ChunkIndex, header.IsLast, buffer, (int)header.Length, index));
        }

        public ValueTask OnSyncAsync(uint iteration)
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _barrier, tcs);
            owner.Tell(new SyncReached(index, iteration, tcs));
            return new ValueTask(tcs.Task);
        }

        public void ReleaseBarrier() => Volatile.Read(ref _barrier)?.TrySetCanceled();
    }

    private sealed record LoopEnded : INoSerializationVerificationNeeded
    {
        public static readonly LoopEnded Instance = new();
    }

    private sealed record LoopFailed(Exception Error) : INoSerializationVerificationNeeded;

    private sealed record IdleCheck : INoSerializationVerificationNeeded
    {
        public static readonly IdleCheck Instance = new();
    }
}
