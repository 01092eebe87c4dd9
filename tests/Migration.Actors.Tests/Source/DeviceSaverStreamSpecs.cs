using Migration.Actors.Source;
using Migration.Devices.Device;
using Migration.Devices.Device.Vfio;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// The saver's stop-copy stream: read in runs (several chunks per pool call), yet never more than the read-ahead
/// ahead of the grants, pushed in index order, ending with the Last chunk and the device's digest, and loadable as is.
/// </summary>
public sealed class DeviceSaverStreamSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    private const int ChunkSize = 64 * 1024;

    [Fact]
    public void DeviceSaver_must_read_at_most_its_read_ahead_before_grants_then_stream_the_whole_state_in_order()
    {
        // 32 regions of 64 KiB, all stop-copy data (QEMU 10's model): 2 MiB plus record headers, 33 chunks.
        var options = new SimulatedVfioOptions { Id = "gpu0", StateSizeBytes = 2 << 20, PrecopyBytes = 0, Seed = 5 };
        var device = new SimulatedVfioDevice(options);
        // The stream's length, from a twin (the saver may read before this thread sees the device in STOP_COPY).
        var twin = new SimulatedVfioDevice(options);
        twin.StartPrecopy();
        twin.StartStopCopy();
        var total = twin.StopCopyRemainingBytes;
        var saver = Sys.ActorOf(DeviceSaver.Props(0, device, NewPool(), ChunkSize, readAhead: 3));

        saver.Tell(BeginPrecopySave.Instance, TestActor);
        AwaitCondition(() => device.State == DeviceMigrationState.PreCopy, Patience);
        saver.Tell(BeginStopCopySave.Instance, TestActor);
        AwaitCondition(() => device.State == DeviceMigrationState.StopCopy, Patience);

        // No grant yet: the saver reads its read-ahead (3 chunks) and stops there.
        AwaitCondition(() => device.StopCopyRemainingBytes == total - (3 * ChunkSize), Patience);
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.Equal(total - (3 * ChunkSize), device.StopCopyRemainingBytes);

        saver.Tell(new GrantChunks(1000), TestActor);
        var chunks = new List<SavedChunk>();
        DeviceSaved? saved = null;
        DeviceSaveInfo lastInfo = default;
        while (saved is null || chunks.Count == 0 || !chunks[^1].Last)
        {
            switch (ReceiveOne(Patience))
            {
                case ChunkReady r:
                    chunks.Add(r.Chunk);
                    lastInfo = r.Info;
                    break;
                case DeviceSaved s:
                    saved = s;
                    break;
                case var other:
                    Assert.Fail($"unexpected {other}");
                    break;
            }
        }

        Assert.Equal(Enumerable.Range(0, chunks.Count).Select(i => (long)i), chunks.Select(c => c.Index));
        Assert.All(chunks, c => Assert.True(c.StopCopy));
        Assert.Single(chunks, c => c.Last);
        Assert.Equal(total, chunks.Sum(c => (long)c.Length));
        Assert.Equal(chunks.Count, saved.Chunks);
        Assert.True(lastInfo.ReadBytesPerMs > 0, "the saver reports its measured read rate once it read 1 MiB");

        // The stream loads as it is and reproduces the device's digest.
        var destination = new SimulatedVfioDevice(options);
        destination.StartResuming();
        foreach (var c in chunks)
        {
            destination.WriteChunk(c.Index, c.Buffer.AsSpan(0, c.Length));
            c.ReturnBuffer();
        }

        destination.FinishResuming();
        Assert.Equal(saved.Digest, destination.ComputeDigest().ToString("x32"));
        ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }
}
