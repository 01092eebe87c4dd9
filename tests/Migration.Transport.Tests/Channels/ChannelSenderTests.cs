using System.Collections.Concurrent;
using Migration.Transport.Channels;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// The sender thread and its queue: jobs go out in order with their completions reported in order; the queue never
/// grows past its depth; after a failure nothing more is sent; after Abandon nothing more is reported; the writer is
/// disposed when the thread ends.
/// </summary>
public sealed class ChannelSenderTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private sealed class Job(int id, bool fail = false, ManualResetEventSlim? gate = null)
    {
        public int Id { get; } = id;
        public bool Fail { get; } = fail;
        public ManualResetEventSlim? Gate { get; } = gate;
    }

    /// <summary>Records what the sender thread reports; a job may block on its gate or throw.</summary>
    private sealed class Recorder : IChannelSendHandler<Job, int>
    {
        public ConcurrentQueue<string> Events { get; } = new();
        public SemaphoreSlim Reported { get; } = new(0);
        public int SenderThread { get; private set; }

        public int Send(PacketWriter writer, Job job, CancellationToken ct)
        {
            SenderThread = Environment.CurrentManagedThreadId;
            job.Gate?.Wait(ct);
            if (job.Fail)
            {
                throw new IOException($"job {job.Id} failed");
            }

            writer.WriteSync((uint)job.Id, ct);
            return job.Id;
        }

        public void Completed(int done) => Add($"done {done}");

        public void Dropped(Job job) => Add($"dropped {job.Id}");

        public void Failed(Exception error) => Add($"failed: {error.Message}");

        private void Add(string e)
        {
            Events.Enqueue(e);
            Reported.Release();
        }

        public void Await(int count)
        {
            for (var i = 0; i < count; i++)
            {
                Assert.True(Reported.Wait(Patience), $"only {i} of {count} events: {string.Join("; ", Events)}");
            }
        }
    }

    [Fact]
    public void BoundedJobQueue_is_fifo_refuses_beyond_its_depth_and_drains_after_completion()
    {
        var q = new BoundedJobQueue<string>(2);
        Assert.True(q.TryAdd("a"));
        Assert.True(q.TryAdd("b"));
        Assert.False(q.TryAdd("c"));
        Assert.True(q.TryTake(out var first));
        Assert.Equal("a", first);
        Assert.True(q.TryAdd("c"));
        q.Complete();
        Assert.False(q.TryAdd("d"));
        Assert.True(q.TryTake(out var second));
        Assert.True(q.TryTake(out var third));
        Assert.Equal(("b", "c"), (second, third));
        Assert.False(q.TryTake(out _));
    }

    [Fact]
    public async Task BoundedJobQueue_wakes_a_blocked_consumer()
    {
        var q = new BoundedJobQueue<string>(1);
        var take = Task.Run(() => q.TryTake(out var job) ? job : null);
        await Task.Delay(50);
        Assert.False(take.IsCompleted);
        q.TryAdd("x");
        Assert.Equal("x", await take.WaitAsync(Patience));
        var ended = Task.Run(() => q.TryTake(out _));
        q.Complete();
        Assert.False(await ended.WaitAsync(Patience));
    }

    [Fact]
    public async Task ChannelSender_reports_completions_in_order_on_its_own_thread_and_stops_sending_after_a_failure()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        var recorder = new Recorder();
        var sender = new ChannelSender<Job, int>(new SocketChannelIo(pair.Sender), 0, null, true, 4, queueDepth: 4, recorder);
        Assert.True(sender.TryEnqueue(new Job(1)));
        Assert.True(sender.TryEnqueue(new Job(2)));
        recorder.Await(2);
        Assert.NotEqual(Environment.CurrentManagedThreadId, recorder.SenderThread);

        // A failed send: reported once, and the jobs queued after it are dropped, never sent.
        var gate = new ManualResetEventSlim();
        Assert.True(sender.TryEnqueue(new Job(3, fail: true, gate: gate)));
        Assert.True(sender.TryEnqueue(new Job(4)));
        Assert.True(sender.TryEnqueue(new Job(5)));
        gate.Set();
        recorder.Await(3);
        Assert.Equal(["done 1", "done 2", "failed: job 3 failed", "dropped 4", "dropped 5"], recorder.Events);

        sender.Abandon();
        Assert.True(sender.Join(Patience), "the sender thread did not end after Abandon");
        // Exactly two Sync packets reached the wire.
        var wire = new byte[2 * (PacketHeaderSize + Migration.Transport.Wire.SyncPacket.Size)];
        await SocketIo.ReceiveExactlyAsync(pair.Receiver, wire, 0, "two syncs", CancellationToken.None).AsTask().WaitAsync(Patience);
        pair.Sender.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.Equal(0, await pair.Receiver.ReceiveAsync(new byte[16], System.Net.Sockets.SocketFlags.None).WaitAsync(Patience));
    }

    private const int PacketHeaderSize = Migration.Transport.Wire.PacketHeader.Size;

    [Fact]
    public async Task ChannelSender_reports_nothing_once_abandoned_and_drops_what_was_queued()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        var recorder = new Recorder();
        var sender = new ChannelSender<Job, int>(new SocketChannelIo(pair.Sender), 0, null, true, 4, queueDepth: 3, recorder);
        var gate = new ManualResetEventSlim();
        Assert.True(sender.TryEnqueue(new Job(1, gate: gate)));
        Assert.True(sender.TryEnqueue(new Job(2)));
        Assert.True(sender.TryEnqueue(new Job(3)));
        await Task.Delay(50);

        // Job 1 is in the middle of its send when the channel gives the connection up.
        sender.Abandon();
        gate.Set();
        Assert.True(sender.Join(Patience));
        Assert.False(sender.TryEnqueue(new Job(4)));
        Assert.DoesNotContain(recorder.Events, e => e.StartsWith("done", StringComparison.Ordinal) || e.StartsWith("failed", StringComparison.Ordinal));
        Assert.Equal(["dropped 2", "dropped 3"], recorder.Events.Where(e => e.StartsWith("dropped", StringComparison.Ordinal)));
    }
}
