using System.Net.Sockets;
using Migration.Actors.Messages;
using Migration.Devices.Guest;
using Migration.Transport.Channels;
using Migration.Transport.Wire;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// The destination's side of losing a channel before the stop (docs/architecture.md "Losing a channel"), with the
/// source played by hand over raw sockets: the lost connection's receive loop ends, the destination tells the source
/// what it delivered (ChannelResume: last Sync, chunk indices held per device), gives back the budget of a chunk cut
/// in half, accepts the channel index again, and keeps the barrier slot for the iteration the channel had not finished.
/// </summary>
public sealed class ChannelReconnectSpecs(ITestOutputHelper output) : IncomingSpecBase(output)
{
    [Fact]
    public async Task A_channel_lost_mid_iteration_reconnects_resends_and_the_guest_verifies()
    {
        var spec = Spec("vm-reconnect");
        using var guest = GuestFactory.CreateRunning(spec);
        guest.Workload.Pause();
        var ramDigests = guest.RamDigests();
        var (chunks, deviceDigest) = SaveDeviceState(guest.Devices[0], ChunkSize);
        Assert.True(chunks.Count >= 3, $"{chunks.Count} chunks; the test needs at least 3 (the budget holds two)");

        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id, spec);
        var settings = Settings();
        var c0 = await ConnectAsync(ack, 0);
        var c1 = await ConnectAsync(ack, 1);
        using var w0 = new PacketWriter(c0, 0, null, settings.ZeroPageDetection, settings.PacketPages);
        using var w1 = new PacketWriter(c1, 1, null, settings.ZeroPageDetection, settings.PacketPages);

        // Channel 0: all of RAM in iteration 1, then Sync(1): it waits at the barrier for channel 1.
        var block = guest.Blocks[0];
        var pages = new long[settings.PacketPages];
        for (long first = 0; first < block.PageCount; first += pages.Length)
        {
            for (var i = 0; i < pages.Length; i++)
            {
                pages[i] = first + i;
            }

            await w0.WriteRamAsync(block, 0, pages, pages.Length, 1, CancellationToken.None).AsTask().WaitAsync(Timeout);
        }

        await w0.WriteSyncAsync(1, CancellationToken.None).AsTask().WaitAsync(Timeout);

        // Channel 1: chunk 1 arrives whole (held: chunk 0 is missing), then half of chunk 0, then the connection dies
        // before its Sync(1).
        await w1.WriteDeviceChunkAsync(ChunkHeader(1, chunks[1].Length, false), chunks[1], CancellationToken.None).AsTask().WaitAsync(Timeout);
        var partial = DevicePacket(ChunkHeader(0, chunks[0].Length, false), chunks[0]);
        await SendAsync(c1, partial.AsMemory(0, partial.Length / 2));
        // FIN, not RST: the destination reads everything sent so far (an RST could discard chunk 1 unread).
        c1.Shutdown(SocketShutdown.Send);

        var resume = (ChannelResume)await Source.FishForMessageAsync(m => m is ChannelResume, Timeout);
        Assert.Equal(id, resume.MigrationId);
        Assert.Equal(1, resume.Channel);
        Assert.Equal((ushort)0, resume.Connection);
        Assert.Equal(0u, resume.DeliveredThroughIteration);
        var receipt = Assert.Single(resume.Devices);
        Assert.Equal(0, receipt.Next);
        Assert.Equal([1L], receipt.Held);

        // The same index connects again with the migration's token; the new connection starts in iteration 1.
        var again = await ReconnectAsync(ack, 1, connection: 1);
        using var w1b = new PacketWriter(again, 1, null, settings.ZeroPageDetection, settings.PacketPages);

        // Resent chunk 0: it must find room in the budget (2 chunks), which only holds if the half-read chunk's
        // reservation was given back: chunk 1 held + chunk 0 resent = the whole budget.
        await w1b.WriteDeviceChunkAsync(ChunkHeader(0, chunks[0].Length, false), chunks[0], CancellationToken.None).AsTask().WaitAsync(Timeout);
        await w1b.WriteSyncAsync(1, CancellationToken.None).AsTask().WaitAsync(Timeout);
        // The barrier of iteration 1 opens (IterationReceived) and chunks 0 and 1 are loaded (their credits), in any order.
        var credited = new List<long>();
        var received = new List<uint>();
        while (credited.Count < 2 || received.Count < 1)
        {
            switch (await Source.FishForMessageAsync(m => m is DeviceCredit or IterationReceived, Timeout))
            {
                case DeviceCredit c:
                    credited.Add(c.ChunkIndex);
                    break;
                case IterationReceived r:
                    received.Add(r.Iteration);
                    break;
            }
        }

        Assert.Equal([1u], received);
        Assert.Equal([0L, 1L], credited);
        var outstanding = 0;
        for (var i = 2; i < chunks.Count; i++)
        {
            if (outstanding == 2)
            {
                await Source.FishForMessageAsync(m => m is DeviceCredit, Timeout);
                outstanding--;
            }

            var writer = i % 2 == 0 ? w1b : w0;
            await writer.WriteDeviceChunkAsync(ChunkHeader(i, chunks[i].Length, i == chunks.Count - 1), chunks[i], CancellationToken.None).AsTask().WaitAsync(Timeout);
            outstanding++;
        }

        await w0.WriteEndAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
        await w1b.WriteEndAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);

        ack.Incoming.Tell(new SourceDigests(id, [.. ramDigests], [deviceDigest], [chunks.Count]), Source.Ref);
        var verdict = await Source.FishForMessageAsync(m => m is DestinationVerified or IncomingFailed, Timeout);
        var verified = Assert.IsType<DestinationVerified>(verdict);
        Assert.Equal(ramDigests, verified.Stats.RamDigests);
        Assert.Equal([deviceDigest], verified.Stats.DeviceDigests);
        Assert.InRange(verified.Stats.PeakDeviceBufferBytes, 1, Budget);

        ack.Incoming.Tell(new CommitMigration(id), Source.Ref);
        Assert.IsType<GuestResumed>(await Source.FishForMessageAsync(m => m is GuestResumed or IncomingFailed, Timeout));
    }

    [Fact]
    public async Task A_second_connection_for_a_channel_is_refused_until_the_old_one_is_gone()
    {
        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id);
        var c1 = await ConnectAsync(ack, 1);

        var duplicate = await Assert.ThrowsAsync<ChannelSetupException>(() => ConnectAsync(ack, 1));
        Assert.Equal(HelloStatus.Duplicate, duplicate.Refusal);

        c1.Close(0);
        var resume = (ChannelResume)await Source.FishForMessageAsync(m => m is ChannelResume, Timeout);
        Assert.Equal(1, resume.Channel);
        var second = await ReconnectAsync(ack, 1, connection: 3);

        // That connection is lost too: its resume names it, and an attempt with an older number than 3 is refused
        // (stale or replayed), a newer one accepted.
        second.Close(0);
        var again = (ChannelResume)await Source.FishForMessageAsync(m => m is ChannelResume, Timeout);
        Assert.Equal((ushort)3, again.Connection);
        ChannelSetupException stale;
        do
        {
            // Duplicate until the listener has the release; then the number is what it refuses.
            stale = await Assert.ThrowsAsync<ChannelSetupException>(() => ConnectAsync(ack, 1, connection: 2));
        }
        while (stale.Refusal == HelloStatus.Duplicate && await Task.Delay(50).ContinueWith(_ => true));

        Assert.Equal(HelloStatus.BadChannel, stale.Refusal);
        await ReconnectAsync(ack, 1, connection: 4);
        Node.Tell(new AbortIncoming(id, "spec finished"), Source.Ref);
    }

    [Fact]
    public async Task With_reconnect_off_a_lost_channel_fails_the_migration()
    {
        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id, settings: Settings() with { ChannelReconnectTimeout = TimeSpan.Zero });
        var c1 = await ConnectAsync(ack, 1);
        c1.Close(0);

        var failed = await ExpectIncomingFailedAsync(id);
        Assert.Contains("channel 1", failed.Reason, StringComparison.Ordinal);
        await AssertNodeStillWorksAsync(ack.Incoming);
    }

    [Fact]
    public async Task A_channel_that_does_not_come_back_in_time_fails_the_migration()
    {
        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id, settings: Settings() with { ChannelReconnectTimeout = TimeSpan.FromMilliseconds(500) });
        var c1 = await ConnectAsync(ack, 1);
        c1.Close(0);

        Assert.IsType<ChannelResume>(await Source.FishForMessageAsync(m => m is ChannelResume, Timeout));
        var failed = await ExpectIncomingFailedAsync(id);
        Assert.Contains("waiting for channel 1 to reconnect", failed.Reason, StringComparison.Ordinal);
        await AssertNodeStillWorksAsync(ack.Incoming);
    }

    /// <summary>
    /// Connects the index again. The destination frees it just after sending ChannelResume, so an attempt may still
    /// meet the old registration (Duplicate): retry briefly, as the source's channel does.
    /// </summary>
    private async Task<Socket> ReconnectAsync(PrepareAck ack, int index, ushort connection)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await ConnectAsync(ack, index, connection: connection);
            }
            catch (ChannelSetupException e) when (e.Refusal == HelloStatus.Duplicate && attempt < 50)
            {
                await Task.Delay(50);
            }
        }
    }
}
