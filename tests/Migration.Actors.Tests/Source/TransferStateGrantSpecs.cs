using System.Buffers;
using Akka.TestKit;
using Migration.Actors.Source;
using Migration.Devices.Device;
using Migration.Devices.Device.Vfio;
using Migration.Devices.Ram;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// Device credit is granted to a saver in bulk (no request/reply per chunk): one GrantChunks for as many chunks as the
/// credit and the grant depth allow, topped up as chunks leave; grants a dry saver gives back, and those left over at
/// the device's last chunk, free their reserved credit.
/// </summary>
public sealed class TransferStateGrantSpecs : MigrationSpec
{
    private const int ChunkSize = 4096;
    private readonly RamBlock _block = RamBlock.Create("grants", 8L * RamBlock.PageSize);
    private readonly TestProbe _channel;
    private readonly TestProbe _saver;
    private readonly TransferState _state;

    public TransferStateGrantSpecs(ITestOutputHelper output)
        : base(output)
    {
        _channel = CreateTestProbe("ch0");
        _saver = CreateTestProbe("saver");
        IMigratableDevice device = new SimulatedVfioDevice(new SimulatedVfioOptions { Id = "gpu", Instance = 3, StateSizeBytes = 1 << 16 });
        _state = new TransferState([_channel.Ref], [_saver.Ref], [device], new RamScanner([_block], pagesPerPacket: 4),
            new DeviceCreditPool(budgetBytes: 6 * ChunkSize, ChunkSize, devices: 1), queueDepth: 2, grantAhead: 4)
        {
            DeviceRequestsEnabled = true,
        };
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _block.Dispose();
        }
    }

    private static SavedChunk Chunk(long index, int length, bool last = false) =>
        new(0, index, StopCopy: last, Last: last, ArrayPool<byte>.Shared.Rent(length), length);

    private List<DeviceChunkJob> Sent()
    {
        var jobs = new List<DeviceChunkJob>();
        while (_channel.HasMessages)
        {
            jobs.Add(_channel.ExpectMsg<DeviceChunkJob>(TimeSpan.Zero));
        }

        return jobs;
    }

    [Fact]
    public void TransferState_must_grant_chunks_in_bulk_and_top_the_grant_up_as_chunks_leave()
    {
        _state.Pump();
        Assert.Equal(4, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        Assert.Equal(4 * ChunkSize, _state.Credit.InFlightBytes);
        Assert.Equal(4, _state.Granted(0));

        // Two chunks arrive and go to the channel (queue depth 2); granted 2 + ready 0 < 4: two more are granted at once.
        _state.OnChunkReady(Chunk(0, 1000), new DeviceSaveInfo(9000, 0, 0));
        _state.OnChunkReady(Chunk(1, 2000), new DeviceSaveInfo(9000, 0, 0));
        _state.Pump();
        Assert.Equal([0L, 1L], Sent().Select(j => j.Chunk.Index));
        Assert.Equal(2, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        Assert.Equal(1000 + 2000 + (4 * ChunkSize), _state.Credit.InFlightBytes);

        // The budget (6 chunks) caps the grants: chunk 2 arrives, nothing more can be reserved until credit returns.
        _state.OnChunkReady(Chunk(2, ChunkSize), new DeviceSaveInfo(9000, 0, 0));
        _state.Pump();
        Assert.False(_saver.HasMessages);
        Assert.Equal(3, _state.Granted(0));

        // The saver ran dry and gives its 3 grants back: their credit is free, and the device is not asked again until repolled.
        _state.OnNoChunk(0, new DeviceSaveInfo(0, 1 << 16, 0), returned: 3);
        Assert.Equal(0, _state.Granted(0));
        Assert.Equal(1000 + 2000 + ChunkSize, _state.Credit.InFlightBytes);
        _state.Pump();
        Assert.False(_saver.HasMessages);
        _state.ClearDry();
        _state.Pump();
        // Chunk 2 still waits for the channel: 3 grants bring the device back to 4 granted or ready.
        Assert.Equal(3, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        Assert.False(_state.DeviceQueuesEmpty);
        foreach (var j in Sent())
        {
            j.Chunk.ReturnBuffer();
        }
    }

    [Fact]
    public void TransferState_must_free_the_grants_left_over_at_the_last_chunk()
    {
        _state.Pump();
        Assert.Equal(4, _saver.ExpectMsg<GrantChunks>(TimeSpan.Zero).Count);
        _state.OnChunkReady(Chunk(0, ChunkSize), new DeviceSaveInfo(0, 100, 0));
        _state.OnChunkReady(Chunk(1, 100, last: true), new DeviceSaveInfo(0, 0, 0));

        // Two grants were never used: only the two chunks' bytes stay reserved, and the saver is never granted again.
        Assert.Equal(0, _state.Granted(0));
        Assert.Equal(ChunkSize + 100, _state.Credit.InFlightBytes);
        _state.Pump();
        Assert.Equal(2, Sent().Count);
        Assert.False(_saver.HasMessages);
        Assert.True(_state.AllDevicesSent);
        Assert.True(_state.DeviceQueuesEmpty);
        Assert.Throws<InvalidOperationException>(() => _state.OnChunkReady(Chunk(2, 10), default));
    }
}
