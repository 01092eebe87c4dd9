using Migration.Actors.Messages;
using Migration.Devices.Guest;
using Migration.Transport.Channels;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// A well-behaved source played by hand: two channels carry all RAM pages (iteration 1), Sync(1), the device
/// state within credit, End; the destination verifies the digests and resumes the guest on commit.
/// </summary>
public sealed class IncomingHappyPathSpec(ITestOutputHelper output) : IncomingSpecBase(output)
{
    [Fact]
    public async Task Guest_sent_over_two_channels_is_verified_and_resumed_on_commit()
    {
        var spec = Spec("vm-happy");
        using var guest = GuestFactory.CreateRunning(spec);
        guest.Workload.Pause();
        var ramDigests = guest.RamDigests();
        var (chunks, deviceDigest) = SaveDeviceState(guest.Devices[0], ChunkSize);
        Assert.True(chunks.Count > 2, "the device state must need more than the budget");

        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id, spec);
        var sockets = new[] { await ConnectAsync(ack, 0), await ConnectAsync(ack, 1) };
        var settings = Settings();
        var writers = sockets.Select((s, i) => new PacketWriter(s, i, null, settings.ZeroPageDetection, settings.PacketPages)).ToArray();
        try
        {
            // RAM, iteration 1: packet k of 128 pages on channel k % 2, both channels at once; then Sync(1) on both.
            var block = guest.Blocks[0];
            var packets = block.PageCount / settings.PacketPages;
            var results = await Task.WhenAll(writers.Select((w, channel) => Task.Run(async () =>
            {
                long normal = 0, zero = 0;
                var pages = new long[settings.PacketPages];
                for (var k = channel; k < packets; k += writers.Length)
                {
                    for (var i = 0; i < pages.Length; i++)
                    {
                        pages[i] = ((long)k * settings.PacketPages) + i;
                    }

                    var r = await w.WriteRamAsync(block, 0, pages, pages.Length, 1, CancellationToken.None);
                    normal += r.NormalPages;
                    zero += r.ZeroPages;
                }

                await w.WriteSyncAsync(1, CancellationToken.None);
                return (normal, zero);
            }))).WaitAsync(Timeout);

            // Device state within credit: never more than the announced budget sent and not yet credited back.
            long outstanding = 0, credited = 0;
            for (var i = 0; i < chunks.Count; i++)
            {
                while (outstanding + chunks[i].Length > ack.DeviceBufferBudget)
                {
                    // IterationReceived(1) (the barrier opened) arrives among the credits.
                    var credit = (DeviceCredit)await Source.FishForMessageAsync(m => m is DeviceCredit, Timeout);
                    Assert.Equal(id, credit.MigrationId);
                    Assert.Equal(0, credit.DeviceIndex);
                    outstanding -= credit.Bytes;
                    credited += credit.Bytes;
                }

                var last = i == chunks.Count - 1;
                await writers[i % 2].WriteDeviceChunkAsync(ChunkHeader(i, chunks[i].Length, last), chunks[i], CancellationToken.None)
                    .AsTask().WaitAsync(Timeout);
                outstanding += chunks[i].Length;
            }

            foreach (var w in writers)
            {
                await w.WriteEndAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
            }

            ack.Incoming.Tell(new SourceDigests(id, [.. ramDigests], [deviceDigest], [chunks.Count]), Source.Ref);
            var verdict = await Source.FishForMessageAsync(m => m is DestinationVerified or IncomingFailed, Timeout);
            var verified = Assert.IsType<DestinationVerified>(verdict);
            Assert.Equal(id, verified.MigrationId);
            Assert.Equal(ramDigests, verified.Stats.RamDigests);
            Assert.Equal([deviceDigest], verified.Stats.DeviceDigests);
            Assert.Equal(results.Sum(r => r.normal), verified.Stats.NormalPages);
            Assert.Equal(results.Sum(r => r.zero), verified.Stats.ZeroPages);
            Assert.Equal(block.PageCount, verified.Stats.NormalPages + verified.Stats.ZeroPages);
            Assert.True(verified.Stats.ZeroPages > 0, "the Mixed fill has zero pages");
            Assert.InRange(verified.Stats.PeakDeviceBufferBytes, 1, ack.DeviceBufferBudget);
            Assert.Equal(chunks.Count, verified.Stats.Devices.Single().Chunks);

            ack.Incoming.Tell(new CommitMigration(id), Source.Ref);
            var resumed = Assert.IsType<GuestResumed>(await Source.FishForMessageAsync(m => m is GuestResumed or IncomingFailed, Timeout));
            Assert.Equal(id, resumed.MigrationId);

            var asker = CreateTestProbe();
            Node.Tell(ListGuests.Instance, asker.Ref);
            var list = await asker.ExpectMsgAsync<GuestList>(Timeout);
            var info = Assert.Single(list.Guests);
            Assert.Equal(spec.Id, info.VmId);
            Assert.Equal("running", info.State);
            Assert.Equal(spec.RamBytes, info.RamBytes);

            Node.Tell(new GetGuestDigests(spec.Id), asker.Ref);
            var digests = await asker.ExpectMsgAsync<GuestDigests>(Timeout);
            Assert.Equal(ramDigests, digests.Ram);
            Assert.Equal([deviceDigest], digests.Devices);
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }

            foreach (var w in writers)
            {
                w.Dispose();
            }
        }
    }
}
