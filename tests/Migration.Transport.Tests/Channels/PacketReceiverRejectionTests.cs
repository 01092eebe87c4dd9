using System.Buffers.Binary;
using System.Net.Sockets;
using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// A hostile or broken source on a real socket: every violation ends the receive loop with
/// ProtocolViolationException (or ChannelClosedException) naming the channel and the offending value, and nothing
/// reaches guest RAM or the sink.
/// </summary>
public sealed class PacketReceiverRejectionTests
{
    private const int Channel = 3;
    private const int BlockPages = 256;

    private static RamBlock GarbageBlock()
    {
        var block = RamBlock.Create("dst", BlockPages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(block, RamFillPattern.Random, 77);
        return block;
    }

    private static void AssertViolation(Exception e, params string[] fragments)
    {
        var violation = Assert.IsType<ProtocolViolationException>(e);
        Assert.Equal(Channel, violation.ChannelIndex);
        Assert.StartsWith($"channel {Channel}: ", violation.Message, StringComparison.Ordinal);
        foreach (var f in fragments)
        {
            Assert.Contains(f, violation.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>A device-state packet built by hand from the wire structs.</summary>
    internal static byte[] DevicePacket(DeviceChunkHeader header, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[PacketHeader.Size + DeviceChunkHeader.Size + payload.Length];
        header.WriteTo(bytes.AsSpan(PacketHeader.Size));
        payload.CopyTo(bytes.AsSpan(PacketHeader.Size + DeviceChunkHeader.Size));
        var checksum = new PacketChecksum().ComputeDevice(header, payload);
        new PacketHeader(PacketType.DeviceState, PacketFlags.None, header.ExpectedBodyLength, checksum).WriteTo(bytes);
        return bytes;
    }

    internal static byte[] EndPacketBytes(ulong packetsSent)
    {
        var bytes = new byte[PacketHeader.Size + EndPacket.Size];
        new EndPacket(packetsSent).WriteTo(bytes.AsSpan(PacketHeader.Size));
        new PacketHeader(PacketType.End, PacketFlags.None, EndPacket.Size, PacketChecksum.Compute(bytes.AsSpan(PacketHeader.Size))).WriteTo(bytes);
        return bytes;
    }

    private static byte[] Payload(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task Chunk_larger_than_the_whole_budget_is_beyond_credit()
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1000);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        await rig.SendAsync((w, ct) => w.WriteDeviceChunkAsync(new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 0, 4096), Payload(4096, 1), ct).AsTask());

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, "device 0 chunk 0 of 4096 bytes beyond credit", "budget 1000");
        Assert.Empty(sink.Chunks);
        Assert.Equal(0, sink.Budget.HeldBytes);
    }

    [Fact]
    public async Task Chunk_beyond_the_credit_left_by_held_chunks_is_rejected()
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(8192);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        await rig.SendAsync(async (w, ct) =>
        {
            await w.WriteDeviceChunkAsync(new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 0, 8000), Payload(8000, 1), ct);
            await w.WriteDeviceChunkAsync(new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 1, 1000), Payload(1000, 2), ct);
        });

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, "device 0 chunk 1 of 1000 bytes beyond credit", "8000 of budget 8192");
        Assert.Single(sink.Chunks);
        Assert.Equal(8000, sink.Budget.HeldBytes);
    }

    [Fact]
    public async Task Hand_built_device_packet_is_byte_identical_to_what_PacketWriter_sends()
    {
        var header = new DeviceChunkHeader(1, DevicePhase.StopCopy, DeviceChunkFlags.Last, 8, 9, 3000);
        var payload = Payload(3000, 3);
        var written = await LoopbackSocketPair.CaptureAsync((w, ct) => w.WriteDeviceChunkAsync(header, payload, ct).AsTask());
        Assert.Equal(DevicePacket(header, payload), written);
    }

    [Fact]
    public async Task Flipped_payload_byte_of_a_device_chunk_fails_the_checksum()
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.Zstd, [ram], sink, Channel);
        var header = new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 4, 3000);
        var packet = DevicePacket(header, Payload(3000, 4));
        var checksum = BinaryPrimitives.ReadUInt32LittleEndian(packet.AsSpan(12));
        packet[PacketHeader.Size + DeviceChunkHeader.Size + 1234] ^= 0x40;
        await rig.Pair.SendRawAsync(packet);

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, "device 0 chunk 4", $"checksum 0x{checksum:X8} does not match");
        Assert.Empty(sink.Chunks);
    }

    public static TheoryData<CodecId, bool, RamFillPattern> OffsetCorruptions()
    {
        var data = new TheoryData<CodecId, bool, RamFillPattern>();
        foreach (var codec in new[] { CodecId.None, CodecId.Zstd, CodecId.Lz4 })
        {
            data.Add(codec, true, RamFillPattern.Mixed);
            data.Add(codec, false, RamFillPattern.Mixed);
        }

        // Random pages under a codec go out raw (codec None in the header): the checksum still covers the offsets.
        data.Add(CodecId.Zstd, false, RamFillPattern.Random);
        data.Add(CodecId.Lz4, false, RamFillPattern.Random);
        return data;
    }

    /// <summary>
    /// A real RAM packet (pages 0..127, Mixed or Random content) with its last normal page offset rewritten: either
    /// beyond the block (the offset check reports it) or to another valid page (only the checksum can tell). Either way
    /// no destination page may change.
    /// </summary>
    [Theory]
    [MemberData(nameof(OffsetCorruptions))]
    public async Task Corrupted_page_offset_is_rejected_before_any_page_is_written(CodecId codec, bool beyondBlock, RamFillPattern fill)
    {
        var packet = await CaptureRamPacketAsync(codec, fill, 12, 128);
        var checksum = BinaryPrimitives.ReadUInt32LittleEndian(packet.AsSpan(12));
        var normal = BinaryPrimitives.ReadInt32LittleEndian(packet.AsSpan(PacketHeader.Size + 8));
        Assert.InRange(normal, 1, fill == RamFillPattern.Random ? 128 : 127);
        var expectedCodec = fill == RamFillPattern.Random ? CodecId.None : codec;
        Assert.Equal((byte)expectedCodec, packet[PacketHeader.Size + 2]);
        var at = PacketHeader.Size + RamPacketHeader.Size + ((normal - 1) * sizeof(ulong));
        var original = BinaryPrimitives.ReadUInt64LittleEndian(packet.AsSpan(at));
        ulong corrupt = beyondBlock ? (ulong)BlockPages << RamBlock.PageShift : (ulong)(BlockPages - 1) << RamBlock.PageShift;
        Assert.NotEqual(original, corrupt);
        BinaryPrimitives.WriteUInt64LittleEndian(packet.AsSpan(at), corrupt);

        var (e, normalReceived, zeroReceived, unchanged) = await RejectOnFreshReceiverAsync(codec, packet);
        if (beyondBlock)
        {
            AssertViolation(e, $"page offset 0x{corrupt:X} beyond block 0 of {BlockPages} pages");
        }
        else
        {
            AssertViolation(e, $"RAM packet checksum 0x{checksum:X8} does not match");
        }

        Assert.Equal(0, normalReceived);
        Assert.Equal(0, zeroReceived);
        Assert.True(unchanged, "a destination page changed");
    }

    /// <summary>
    /// A raw packet under a negotiated codec (codec None in its header) must carry exactly n x 4096 payload bytes: here
    /// 100 more, a length that would be legal for a compressed payload. Rejected before any page is written.
    /// </summary>
    [Theory]
    [InlineData(CodecId.Zstd)]
    [InlineData(CodecId.Lz4)]
    public async Task Raw_packet_under_a_codec_with_a_compressed_length_is_rejected(CodecId codec)
    {
        var raw = await CaptureRamPacketAsync(codec, RamFillPattern.Random, 13, 16);
        Assert.Equal((byte)CodecId.None, raw[PacketHeader.Size + 2]);
        var normal = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(PacketHeader.Size + 8));
        Assert.Equal(16u, normal);

        var packet = new byte[raw.Length + 100];
        raw.CopyTo(packet, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(8), BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(8)) + 100);
        BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(PacketHeader.Size + 16), (16 * 4096) + 100);

        var (e, normalReceived, _, unchanged) = await RejectOnFreshReceiverAsync(codec, packet);
        AssertViolation(e, "RAM payload length 65636 for 16 normal pages with codec None, expected 65536");
        Assert.Equal(0, normalReceived);
        Assert.True(unchanged, "a destination page changed");
    }

    /// <summary>A real RAM packet of pages 0..count-1 of a block filled with <paramref name="fill"/>, as PacketWriter sends it under <paramref name="codec"/>.</summary>
    private static async Task<byte[]> CaptureRamPacketAsync(CodecId codec, RamFillPattern fill, int seed, int count)
    {
        using var source = RamBlock.Create("src", BlockPages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, fill, seed);
        long[] pages = [.. Enumerable.Range(0, count).Select(i => (long)i)];
        using var encoder = ReceiverRig.CreateCodec(codec);
        return await LoopbackSocketPair.CaptureAsync(
            (w, ct) => w.WriteRamAsync(source, 0, pages, pages.Length, 1, ct).AsTask(), Channel, encoder);
    }

    /// <summary>
    /// Sends <paramref name="packet"/> to a fresh receiver over a garbage block and waits for its violation; returns it
    /// with the pages the receiver counted and whether the destination block is unchanged.
    /// </summary>
    private static async Task<(ProtocolViolationException Error, long Normal, long Zero, bool Unchanged)> RejectOnFreshReceiverAsync(CodecId codec, byte[] packet)
    {
        using var destination = GarbageBlock();
        var before = destination.ComputeDigest();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(codec, [destination], sink, Channel);
        await rig.Pair.SendRawAsync(packet);
        var e = await rig.FailureAsync<ProtocolViolationException>();
        return (e, rig.Receiver.NormalPages, rig.Receiver.ZeroPages, before == destination.ComputeDigest());
    }

    [Theory]
    [InlineData(5, 7u, "unknown device index 5 (migration has 2 devices)")]
    [InlineData(0, 9u, "device 0 chunk for instance 9, expected instance 7")]
    public async Task Chunk_for_an_unknown_device_or_instance_is_rejected(ushort device, uint instance, string expected)
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        await rig.SendAsync((w, ct) => w.WriteDeviceChunkAsync(new DeviceChunkHeader(device, DevicePhase.Precopy, DeviceChunkFlags.None, instance, 0, 100), Payload(100, 5), ct).AsTask());

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, expected);
        Assert.Empty(sink.Chunks);
        Assert.Empty(sink.Reservations);
    }

    [Fact]
    public async Task Oversized_chunk_length_is_rejected_before_reservation()
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 30);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        // body length consistent with the max chunk, chunk length one more: the chunk length check speaks.
        var header = new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 0, ReceiverRig.MaxChunk + 1);
        var packet = DevicePacket(header, Payload(ReceiverRig.MaxChunk + 1, 6));
        BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(8), DeviceChunkHeader.Size + ReceiverRig.MaxChunk);
        await rig.Pair.SendRawAsync(packet.AsMemory(0, PacketHeader.Size + DeviceChunkHeader.Size));

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, $"device chunk length {ReceiverRig.MaxChunk + 1} exceeds max chunk size {ReceiverRig.MaxChunk}");
        Assert.Empty(sink.Reservations);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ram_packet_of_the_wrong_iteration_is_rejected(bool afterSync)
    {
        using var source = RamBlock.Create("src", BlockPages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Random, 13);
        using var destination = GarbageBlock();
        var before = destination.ComputeDigest();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [destination], sink, Channel);
        long[] pages = [1, 2, 3];
        await rig.SendAsync(async (w, ct) =>
        {
            if (afterSync)
            {
                // Sync(1) closed iteration 1: a late page of iteration 1 could overwrite a newer one.
                await w.WriteSyncAsync(1, ct);
                await w.WriteRamAsync(source, 0, pages, pages.Length, 1, ct);
            }
            else
            {
                await w.WriteRamAsync(source, 0, pages, pages.Length, 2, ct);
            }
        });

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, afterSync
            ? "RAM packet of iteration 1 while the channel is in iteration 2"
            : "RAM packet of iteration 2 while the channel is in iteration 1");
        Assert.Equal(before, destination.ComputeDigest());
    }

    [Theory]
    [InlineData(new uint[] { 2 }, "sync for iteration 2 while the channel is in iteration 1", 0)]
    [InlineData(new uint[] { 1, 1 }, "sync for iteration 1 while the channel is in iteration 2", 1)]
    [InlineData(new uint[] { 1, 3 }, "sync for iteration 3 while the channel is in iteration 2", 1)]
    public async Task Sync_of_the_wrong_iteration_is_rejected(uint[] syncs, string expected, int accepted)
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        await rig.SendAsync(async (w, ct) =>
        {
            foreach (var k in syncs)
            {
                await w.WriteSyncAsync(k, ct);
            }
        });

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, expected);
        Assert.Equal(accepted, sink.Syncs.Length);
    }

    [Theory]
    [InlineData(7UL)]
    [InlineData(0UL)]
    public async Task End_with_a_wrong_packet_count_is_rejected(ulong claimed)
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        await rig.SendAsync(async (w, ct) =>
        {
            await w.WriteSyncAsync(1, ct);
            await SocketIo.SendAllAsync(rig.Pair.Sender, EndPacketBytes(claimed), ct);
        });

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, $"end packet claims {claimed} packets sent, received 1");
    }

    [Fact]
    public async Task Hand_built_end_with_the_right_count_is_accepted()
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        await rig.SendAsync(async (w, ct) =>
        {
            await w.WriteSyncAsync(1, ct);
            await SocketIo.SendAllAsync(rig.Pair.Sender, EndPacketBytes(1), ct);
        });

        Assert.Equal(1UL, (await rig.EndAsync()).PacketsSent);
    }

    [Fact]
    public async Task Bad_packet_magic_is_rejected()
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        var packet = EndPacketBytes(0);
        BinaryPrimitives.WriteUInt32LittleEndian(packet, 0x12345678);
        await rig.Pair.SendRawAsync(packet);

        var e = await rig.FailureAsync<ProtocolViolationException>();
        AssertViolation(e, "bad packet magic 0x12345678, expected 0x4B50474D");
    }

    [Theory]
    [InlineData(0, "after 0 of 16 bytes of packet header")]
    [InlineData(10, "after 10 of 16 bytes of packet header")]
    [InlineData(PacketHeader.Size + 5, "after 5 of 24 bytes of device chunk header")]
    [InlineData(PacketHeader.Size + DeviceChunkHeader.Size + 500, "after 500 of 3000 bytes of device chunk")]
    public async Task Peer_closing_mid_packet_is_a_closed_channel(int bytesBeforeClose, string expected)
    {
        using var ram = GarbageBlock();
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [ram], sink, Channel);
        var packet = DevicePacket(new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 7, 0, 3000), Payload(3000, 7));
        await rig.Pair.SendRawAsync(packet.AsMemory(0, bytesBeforeClose));
        rig.Pair.Sender.Shutdown(SocketShutdown.Send);

        var e = await rig.FailureAsync<ChannelClosedException>();
        Assert.Equal(Channel, e.ChannelIndex);
        Assert.Equal($"channel {Channel}: peer closed the connection {expected}", e.Message);
        Assert.Empty(sink.Chunks);
    }
}
