using Migration.Devices.Ram;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// What the receive loop leaves behind when its connection breaks, and how a reconnected channel's loop starts
/// (docs/protocol.md "Reconnect"): a half-read device chunk gives its budget reservation back and never reaches the
/// sink; a new loop starts in the iteration after the last Sync the old connection delivered.
/// </summary>
public sealed class ConnectionLossTests
{
    [Fact]
    public async Task A_device_chunk_cut_off_by_a_closed_connection_gives_its_reservation_back()
    {
        using var block = RamBlock.Create("loss", 16L * RamBlock.PageSize);
        var sink = new RecordingPacketSink(budgetBytes: ReceiverRig.MaxChunk);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [block], sink);
        var payload = new byte[ReceiverRig.MaxChunk];
        new Random(5).NextBytes(payload);
        var packet = PacketReceiverRejectionTests.DevicePacket(
            new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 0, (uint)payload.Length), payload);

        await rig.SendAsync((_, ct) => SocketIo.SendAllAsync(rig.Pair.Sender, packet.AsMemory(0, packet.Length / 2), ct).AsTask());
        rig.Pair.Sender.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        var closed = await rig.FailureAsync<ChannelClosedException>();
        Assert.Contains("device chunk", closed.Message, StringComparison.Ordinal);
        Assert.Equal([payload.Length], sink.Reservations);
        Assert.Equal([payload.Length], sink.Released);
        Assert.Equal(0, sink.Budget.HeldBytes);
        Assert.Empty(sink.Chunks);
    }

    [Fact]
    public async Task A_loop_started_after_a_lost_connection_begins_at_the_given_iteration()
    {
        using var block = RamBlock.Create("resume", 16L * RamBlock.PageSize);
        var sink = new RecordingPacketSink(budgetBytes: ReceiverRig.MaxChunk);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [block], sink, firstIteration: 3);
        Assert.Equal(3u, rig.Receiver.Iteration);

        await rig.SendAsync(async (w, ct) =>
        {
            await w.WriteRamAsync(block, 0, [0L, 1L], 2, 3, ct);
            await w.WriteSyncAsync(3, ct);
            await w.WriteRamAsync(block, 0, [2L], 1, 4, ct);
            await w.WriteEndAsync(ct);
        });

        await rig.EndAsync();
        Assert.Equal([3u], sink.Syncs);
        Assert.Equal(4u, rig.Receiver.Iteration);
        Assert.Equal(3, rig.Receiver.NormalPages + rig.Receiver.ZeroPages);
    }

    [Fact]
    public async Task A_loop_started_at_iteration_3_rejects_a_packet_of_iteration_1()
    {
        using var block = RamBlock.Create("resume-old", 16L * RamBlock.PageSize);
        var sink = new RecordingPacketSink(budgetBytes: ReceiverRig.MaxChunk);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [block], sink, firstIteration: 3);

        await rig.SendAsync(async (w, ct) => await w.WriteRamAsync(block, 0, [0L], 1, 1, ct));

        var violation = await rig.FailureAsync<ProtocolViolationException>();
        Assert.Contains("RAM packet of iteration 1 while the channel is in iteration 3", violation.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Iteration_0_is_not_a_start()
    {
        using var block = RamBlock.Create("zero", RamBlock.PageSize);
        using var a = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        var limits = new ReceiveLimits(CodecId.None, 4, 4096, [1L], ReceiverRig.Devices);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new PacketReceiver(new SocketChannelIo(a), limits.ForChannel(0), [block], null, new RecordingPacketSink(4096), firstIteration: 0));
    }
}
