using System.Buffers;
using Akka.Actor;
using Akka.TestKit;
using Migration.Actors.Source;
using Migration.Devices.Device;
using Migration.Devices.Device.Vfio;
using Migration.Devices.Ram;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// The coordinator's scheduling: device chunks are requested only within credit, RAM keeps flowing while device
/// credit is exhausted, every channel stays within its queue depth, and Sync follows the jobs a channel already has.
/// Probes play the channels and the saver; the test drives TransferState as the coordinator would.
/// </summary>
public sealed class TransferStateSpecs : MigrationSpec
{
    private const int ChunkSize = 4096;
    private const int QueueDepth = 2;
    private readonly RamBlock _block = RamBlock.Create("transfer", 64L * RamBlock.PageSize);
    private readonly TestProbe[] _channels;
    private readonly TestProbe _saver;
    private readonly int[] _given;
    private readonly int[] _done;
    private readonly TransferState _state;

    public TransferStateSpecs(ITestOutputHelper output)
        : base(output)
    {
        _channels = [CreateTestProbe("ch0"), CreateTestProbe("ch1")];
        _saver = CreateTestProbe("saver");
        _given = new int[_channels.Length];
        _done = new int[_channels.Length];
        IMigratableDevice device = new SimulatedVfioDevice(new SimulatedVfioOptions { Id = "nic", Instance = 7, StateSizeBytes = 1 << 16 });
        var scanner = new RamScanner([_block], pagesPerPacket: 4); // 16 RAM jobs
        _state = new TransferState(
            _channels.Select(p => p.Ref).ToArray(), [_saver.Ref], [device], scanner,
            new DeviceCreditPool(budgetBytes: ChunkSize, ChunkSize, devices: 1), QueueDepth)
        {
            RamActive = true,
            DeviceRequestsEnabled = true,
        };
        scanner.MarkAllDirty();
        scanner.BeginIteration(1);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _block.Dispose();
        }
    }

    /// <summary>What channel <paramref name="ch"/> received so far (the probes run on the calling thread: Tell delivers at once).</summary>
    private List<SendJob> Take(int ch)
    {
        var jobs = new List<SendJob>();
        while (_channels[ch].HasMessages)
        {
            jobs.Add(_channels[ch].ExpectMsg<SendJob>(TimeSpan.Zero));
        }

        _given[ch] += jobs.Count;
        Assert.True(_given[ch] - _done[ch] <= QueueDepth, $"channel {ch} has {_given[ch] - _done[ch]} jobs in flight; queue depth is {QueueDepth}");
        return jobs;
    }

    private void JobDone(int ch)
    {
        _done[ch]++;
        _state.OnJobDone(ch);
    }

    private static void Release(IEnumerable<SendJob> jobs)
    {
        foreach (var job in jobs)
        {
            switch (job)
            {
                case RamJob r:
                    r.ReturnPages();
                    break;
                case DeviceChunkJob c:
                    c.Chunk.ReturnBuffer();
                    break;
            }
        }
    }

    private static SavedChunk Chunk(long index, int length) =>
        new(0, index, StopCopy: false, Last: false, ArrayPool<byte>.Shared.Rent(length), length);

    [Fact]
    public void TransferState_must_throttle_device_chunks_by_credit_while_RAM_keeps_flowing()
    {
        _state.Pump();
        Assert.Equal(1, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        Assert.Equal(ChunkSize, _state.Credit.InFlightBytes);
        var all = new List<SendJob>();
        for (var ch = 0; ch < 2; ch++)
        {
            var jobs = Take(ch);
            Assert.Equal(QueueDepth, jobs.Count);
            Assert.All(jobs, j => Assert.IsType<RamJob>(j));
            all.AddRange(jobs);
        }

        // The saver read a 1000-byte chunk; the credit of one chunk is now spent on it.
        _state.OnChunkReady(Chunk(0, 1000), new DeviceSaveInfo(5000, 0, 0));
        Assert.Equal(1000, _state.Credit.InFlightBytes);
        _state.Pump();
        Assert.Empty(Take(0));
        Assert.Empty(Take(1));

        // Channels finish jobs; the device chunk and then only RAM go out, never another grant.
        var deviceJobs = new List<DeviceChunkJob>();
        var ramAfterCreditSpent = 0;
        for (var round = 0; round < 40; round++)
        {
            var ch = round % 2;
            JobDone(ch);
            _state.Pump();
            var jobs = Take(ch);
            Assert.False(_saver.HasMessages, $"round {round}: the saver was asked for a chunk without credit");
            deviceJobs.AddRange(jobs.OfType<DeviceChunkJob>());
            if (deviceJobs.Count > 0)
            {
                ramAfterCreditSpent += jobs.OfType<RamJob>().Count();
            }

            all.AddRange(jobs);
        }

        var device = Assert.Single(deviceJobs);
        Assert.Equal(7u, device.Instance);
        Assert.Equal((0, 0L, 1000), (device.Chunk.DeviceIndex, device.Chunk.Index, device.Chunk.Length));
        Assert.Equal(16, all.OfType<RamJob>().Count());
        Assert.True(ramAfterCreditSpent >= 10, $"only {ramAfterCreditSpent} RAM jobs went out while device credit was exhausted");
        Assert.True(_state.Scanner.Exhausted);
        _saver.ExpectNoMsg(TimeSpan.FromMilliseconds(20));

        // The destination loaded the chunk and returned its credit: the saver is asked again.
        _state.Credit.Return(0, 1000);
        _state.Pump();
        Assert.Equal(1, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        Assert.False(_saver.HasMessages);
        Assert.Equal(ChunkSize, _state.Credit.InFlightBytes);
        Release(all);
    }

    [Fact]
    public void TransferState_must_deliver_Sync_to_every_channel_after_the_jobs_already_given_to_it()
    {
        _state.DeviceRequestsEnabled = false;
        _state.Pump();
        var before = new[] { Take(0), Take(1) };
        Assert.All(before, jobs => Assert.Equal(QueueDepth, jobs.Count));

        _state.EnqueueOnAllChannels(new SyncJob(1));
        _state.Pump();
        Assert.Empty(Take(0));
        Assert.Empty(Take(1));

        // Channel 0 has room first: its next job is the Sync, before any more RAM; channel 1 is still full.
        JobDone(0);
        _state.Pump();
        var ch0 = Take(0);
        Assert.Equal(new SyncJob(1), Assert.Single(ch0));
        Assert.Empty(Take(1));

        JobDone(1);
        JobDone(1);
        _state.Pump();
        var ch1 = Take(1);
        Assert.Equal(2, ch1.Count);
        Assert.Equal(new SyncJob(1), ch1[0]);
        Assert.IsType<RamJob>(ch1[1]);

        // Nothing else is a Sync: one per channel.
        var rest = new List<SendJob>();
        for (var round = 0; round < 30; round++)
        {
            JobDone(round % 2);
            _state.Pump();
            rest.AddRange(Take(round % 2));
        }

        Assert.DoesNotContain(rest, j => j is SyncJob);
        Assert.Equal(16, before.SelectMany(j => j).Concat(ch1).Concat(rest).OfType<RamJob>().Count());
        _saver.ExpectNoMsg(TimeSpan.Zero);
        Release(before.SelectMany(j => j).Concat(ch1).Concat(rest));
    }

    [Fact]
    public void TransferState_must_take_a_lost_channel_out_and_bring_it_back_with_the_Syncs_its_destination_missed()
    {
        _state.DeviceRequestsEnabled = false;
        _state.Pump();
        var lostJobs = Take(1).Cast<RamJob>().ToList();
        var all = new List<SendJob>(Take(0));
        Assert.Equal(QueueDepth, lostJobs.Count);

        // Channel 1's connection is lost: it gets nothing more, even with room; channel 0 carries the rest of RAM.
        _state.ChannelDown(1);
        _done[1] = _given[1];
        Assert.False(_state.AllChannelsUp);
        for (var round = 0; round < 20; round++)
        {
            JobDone(0);
            _state.Pump();
            all.AddRange(Take(0));
            Assert.Empty(Take(1));
        }

        Assert.True(_state.Scanner.Exhausted);
        _state.EnqueueOnAllChannels(new SyncJob(1));
        JobDone(0);
        _state.Pump();
        Assert.Equal(new SyncJob(1), Assert.Single(Take(0)));
        Assert.Empty(Take(1));

        // Its old connection delivered no Sync: every page it carried is dirty again, and only those.
        var lostPages = lostJobs.SelectMany(j => j.Pages.Take(j.Count)).ToHashSet();
        Assert.Equal(lostPages.Count, _state.Log.Redirty(1, delivered: 0));
        for (long page = 0; page < _block.PageCount; page++)
        {
            Assert.Equal(lostPages.Contains(page), _block.Dirty.IsDirty(page));
        }

        // Back: Sync(1) first, so the destination's barrier for iteration 1 hears from it.
        _state.ChannelUp(1, delivered: 0);
        Assert.True(_state.AllChannelsUp);
        _state.Pump();
        Assert.Equal(new SyncJob(1), Assert.Single(Take(1)));
        Release(all.Concat(lostJobs));
    }

    [Fact]
    public void TransferState_must_resend_the_chunks_a_lost_channel_took_on_another_channel()
    {
        _state.Pump();
        Assert.Equal(1, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        var all = new List<SendJob>(Take(0).Concat(Take(1)));
        _state.OnChunkReady(Chunk(0, 1000), new DeviceSaveInfo(5000, 0, 0));
        DeviceChunkJob? sent = null;
        var carrier = -1;
        for (var round = 0; round < 8 && sent is null; round++)
        {
            JobDone(round % 2);
            _state.Pump();
            var jobs = Take(round % 2);
            all.AddRange(jobs);
            if (jobs.OfType<DeviceChunkJob>().SingleOrDefault() is { } d)
            {
                (sent, carrier) = (d, round % 2);
            }
        }

        Assert.NotNull(sent);
        Assert.Equal(1, _state.Ledger.Count);

        // The destination holds nothing of the device: the chunk comes out of the ledger and goes on the other channel.
        _state.ChannelDown(carrier);
        _done[carrier] = _given[carrier];
        var lost = _state.Ledger.TakeLost(carrier, [new Migration.Actors.Messages.DeviceReceipt(0, [])]);
        Assert.Same(sent!.Chunk, Assert.Single(lost));
        _state.Resend(lost);
        Assert.False(_state.DeviceQueuesEmpty);
        var other = 1 - carrier;
        DeviceChunkJob? resent = null;
        for (var round = 0; round < 4 && resent is null; round++)
        {
            JobDone(other);
            _state.Pump();
            var jobs = Take(other);
            all.AddRange(jobs);
            resent = jobs.OfType<DeviceChunkJob>().SingleOrDefault();
            Assert.Empty(Take(carrier));
        }

        Assert.NotNull(resent);
        Assert.Same(sent.Chunk, resent!.Chunk);
        Assert.True(_state.DeviceQueuesEmpty);

        // Its credit was never returned, so no new chunk was requested for it; the credit settles it once.
        Assert.Equal(1000, _state.Credit.InFlightBytes);
        _state.Ledger.Credited(0, 0, 1000);
        Assert.Equal(0, _state.Ledger.Count);
        Assert.Throws<InvalidOperationException>(() => _state.Ledger.Credited(0, 0, 1000));
        Release(all.Where(j => j is RamJob));
    }
}
