using Migration.Transport.Codecs;

namespace Migration.Transport.Channels;

/// <summary>What a channel's sender does with each job; implemented by the channel's owner (the source actors).</summary>
public interface IChannelSendHandler<TJob, TDone>
{
    /// <summary>Encodes and sends <paramref name="job"/> with blocking calls on the sender thread; returns its completion.</summary>
    TDone Send(PacketWriter writer, TJob job, CancellationToken ct);

    /// <summary>A job completed. Called on the sender thread, in job order, never after <see cref="ChannelSender{TJob,TDone}.Abandon"/> returned.</summary>
    void Completed(TDone done);

    /// <summary>A job that will not be sent (after a failure, or queued when the sender was abandoned): release what it holds.</summary>
    void Dropped(TJob job);

    /// <summary>The first send failure of this connection (not reported once abandoned); nothing more is sent after it.</summary>
    void Failed(Exception error);
}

/// <summary>
/// The byte pump of one connection of a source channel, as a QEMU multifd channel thread: a dedicated thread takes jobs
/// from a bounded queue (depth = channel-queue-depth; the coordinator never has more outstanding) and sends each with
/// blocking, gathered socket calls through this connection's <see cref="PacketWriter"/>. No task or async state machine
/// per packet. Completions go from the thread straight to the handler (the coordinator), in job order.
/// Ownership: the sender owns the writer and the codec from construction and disposes both when its thread ends (so no
/// send can still be using their buffers); the connection (IChannelIo) belongs to the channel actor, which aborts it.
/// Lifecycle: <see cref="Abandon"/> (connection lost or channel stopped) stops reporting at once, cancels a send
/// waiting for buffer space, and lets the thread drop the queued jobs and end; call it before aborting the connection.
/// </summary>
public sealed class ChannelSender<TJob, TDone> : IDisposable
    where TJob : class
{
    private readonly BoundedJobQueue<TJob> _queue;
    private readonly PacketWriter _writer;
    private readonly IRamCodec? _codec;
    private readonly IChannelSendHandler<TJob, TDone> _handler;
    private readonly CancellationTokenSource _cts = new();
    private readonly object _reportLock = new();
    private readonly Thread _thread;
    private bool _abandoned;

    /// <param name="earlyAbort">Send incompressible RAM packets raw under the codec (only when the receiver takes them).</param>
    public ChannelSender(IChannelIo io, int channel, IRamCodec? codec, bool zeroPageDetection, int packetPages, int queueDepth,
        IChannelSendHandler<TJob, TDone> handler, bool earlyAbort = true)
    {
        _queue = new BoundedJobQueue<TJob>(queueDepth);
        _codec = codec;
        _writer = new PacketWriter(io, channel, codec, zeroPageDetection, packetPages, earlyAbort);
        _handler = handler;
        _thread = new Thread(Run) { IsBackground = true, Name = $"send-ch{channel}" };
        _thread.Start();
    }

    /// <summary>Fault injection: the next packet goes out corrupted (thread-safe).</summary>
    public void CorruptNextPacket() => _writer.CorruptNextPacket();

    /// <summary>Queues a job; false if the queue is full (the caller broke its bound) or the sender was abandoned.</summary>
    public bool TryEnqueue(TJob job) => _queue.TryAdd(job);

    /// <summary>The sender thread has ended (writer and codec disposed).</summary>
    public bool Join(TimeSpan timeout) => _thread.Join(timeout);

    private void Run()
    {
        var ct = _cts.Token;
        var failed = false;
        try
        {
            while (_queue.TryTake(out var job))
            {
                // After a failure nothing more goes out on this connection: a packet after a half-written one is garbage.
                if (failed || Volatile.Read(ref _abandoned))
                {
                    _handler.Dropped(job);
                    continue;
                }

                TDone done;
                try
                {
                    done = _handler.Send(_writer, job, ct);
                }
                catch (Exception e)
                {
                    failed = true;
                    Report(() => _handler.Failed(e));
                    continue;
                }

                lock (_reportLock)
                {
                    if (!_abandoned)
                    {
                        _handler.Completed(done);
                    }
                }
            }
        }
        finally
        {
            _writer.Dispose();
            _codec?.Dispose();
            _cts.Dispose();
        }
    }

    private void Report(Action report)
    {
        lock (_reportLock)
        {
            if (!_abandoned)
            {
                report();
            }
        }
    }

    /// <summary>
    /// Stops the sender: after this returns no completion or failure is reported any more (so a message the caller sends
    /// next, such as ChannelLost, follows every completion that was reported); a send waiting for socket buffer space is
    /// cancelled; queued jobs are dropped by the thread. Idempotent; the thread ends once its current call returns.
    /// </summary>
    public void Abandon()
    {
        lock (_reportLock)
        {
            if (_abandoned)
            {
                return;
            }

            _abandoned = true;
        }

        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the thread has ended already
        }

        _queue.Complete();
    }

    public void Dispose() => Abandon();
}
