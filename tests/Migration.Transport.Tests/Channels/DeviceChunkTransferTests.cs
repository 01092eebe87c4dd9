using Migration.Devices.Ram;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>Device-state chunks through PacketWriter -> loopback TCP -> PacketReceiver -> sink.</summary>
public sealed class DeviceChunkTransferTests
{
    public static TheoryData<CodecId> Codecs() => [CodecId.None, CodecId.Zstd, CodecId.Lz4];

    [Theory]
    [MemberData(nameof(Codecs))]
    public async Task Chunks_of_every_size_reach_the_sink_unchanged_and_each_is_reserved(CodecId codec)
    {
        int[] lengths = [1, 100, 4096, ReceiverRig.MaxChunk, 12345, 0];
        var random = new Random(42);
        var payloads = lengths.Select(n =>
        {
            var b = new byte[n];
            random.NextBytes(b);
            return b;
        }).ToArray();
        var headers = lengths.Select((n, i) => new DeviceChunkHeader(
            DeviceIndex: 1,
            Phase: i < 3 ? DevicePhase.Precopy : DevicePhase.StopCopy,
            Flags: i == lengths.Length - 1 ? DeviceChunkFlags.Last : DeviceChunkFlags.None,
            Instance: 8,
            ChunkIndex: (ulong)i,
            Length: (uint)n)).ToArray();

        using var ram = RamBlock.Create("dst", 16 * (long)RamBlock.PageSize);
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(codec, [ram], sink, channel: 2);
        long wire = 0;
        await rig.SendAsync(async (writer, ct) =>
        {
            for (var i = 0; i < headers.Length; i++)
            {
                wire += await writer.WriteDeviceChunkAsync(headers[i], payloads[i], ct);
                if (i == 2)
                {
                    await writer.WriteSyncAsync(1, ct);
                }
            }

            await writer.WriteEndAsync(ct);
        });

        var end = await rig.EndAsync();
        Assert.Equal((ulong)headers.Length + 1, end.PacketsSent);
        var chunks = sink.Chunks;
        Assert.Equal(headers, chunks.Select(c => c.Header));
        for (var i = 0; i < headers.Length; i++)
        {
            Assert.Equal(payloads[i], chunks[i].Payload);
        }

        // Uncompressed on the wire whatever the RAM codec: 16 + 24 + length per chunk.
        Assert.Equal(lengths.Sum(n => 40L + n), wire);
        Assert.Equal(lengths, sink.Reservations);
        Assert.Equal(lengths.Sum(), sink.Budget.HeldBytes);
        Assert.Equal([1u], sink.Syncs);
        Assert.Equal(0, rig.Receiver.NormalPages);
        Assert.Equal(rig.Writer.WireBytes, rig.Receiver.WireBytes);
    }

    [Fact]
    public async Task A_chunk_that_exactly_fills_the_remaining_budget_is_accepted()
    {
        using var ram = RamBlock.Create("dst", 16 * (long)RamBlock.PageSize);
        var sink = new RecordingPacketSink(8192);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink);
        await rig.SendAsync(async (writer, ct) =>
        {
            await writer.WriteDeviceChunkAsync(new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 0, 8000), new byte[8000], ct);
            await writer.WriteDeviceChunkAsync(new DeviceChunkHeader(0, DevicePhase.StopCopy, DeviceChunkFlags.Last, 7, 1, 192), new byte[192], ct);
            await writer.WriteEndAsync(ct);
        });

        await rig.EndAsync();
        Assert.Equal(8192, sink.Budget.HeldBytes);
        Assert.Equal(2, sink.Chunks.Length);
    }
}
