using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// The receive loop reads a packet's fixed parts (header, type header, offsets) with one receive and its pages
/// straight into guest memory: a recorded stream replayed through an IChannelIo that counts receive calls.
/// </summary>
public sealed class ReceiveCallsTests
{
    private const int Packets = 4;

    [Fact]
    public async Task A_full_RAM_packet_costs_one_receive_for_its_fixed_parts_and_one_for_its_pages()
    {
        const int pagesPerPacket = ReceiverRig.MaxPages;
        using var source = RamBlock.Create("src", Packets * pagesPerPacket * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", source.SizeBytes);
        GuestRamFiller.Fill(source, RamFillPattern.Random, 3);
        var stream = await RecordAsync(source, pagesPerPacket);

        var io = new ReplayIo(stream);
        var limits = new ReceiveLimits(CodecId.None, ReceiverRig.MaxPages, ReceiverRig.MaxChunk, [destination.PageCount], ReceiverRig.Devices);
        using var receiver = new PacketReceiver(io, limits.ForChannel(0), [destination], null, new RecordingPacketSink(1 << 20));
        await receiver.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
        // Two per RAM packet (fixed parts, pages), one for End. Separate receives for header, type header and
        // offsets would make it four per packet.
        Assert.Equal((2 * Packets) + 1, io.Receives);
        Assert.Equal(stream.Length, receiver.WireBytes);
    }

    [Fact]
    public async Task Read_ahead_bytes_of_a_short_packet_land_in_guest_memory_and_the_next_packet_still_parses()
    {
        // Packets of 5 pages: the read-ahead for a full packet's fixed parts takes some page data along.
        using var source = RamBlock.Create("src", Packets * 5 * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", source.SizeBytes);
        GuestRamFiller.Fill(source, RamFillPattern.Random, 4);
        var stream = await RecordAsync(source, 5);

        var io = new ReplayIo(stream) { MaxPerReceive = 3000 }; // and the socket hands out odd-sized pieces
        var limits = new ReceiveLimits(CodecId.None, ReceiverRig.MaxPages, ReceiverRig.MaxChunk, [destination.PageCount], ReceiverRig.Devices);
        using var receiver = new PacketReceiver(io, limits.ForChannel(0), [destination], null, new RecordingPacketSink(1 << 20));
        await receiver.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
        Assert.Equal(stream.Length, receiver.WireBytes);
    }

    [Fact]
    public async Task A_stream_cut_inside_the_read_ahead_is_a_closed_channel_naming_what_was_short()
    {
        using var source = RamBlock.Create("src", 128 * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", source.SizeBytes);
        var stream = await RecordAsync(source, 128);

        var io = new ReplayIo(stream.AsSpan(0, PacketHeader.Size + 10).ToArray());
        var limits = new ReceiveLimits(CodecId.None, ReceiverRig.MaxPages, ReceiverRig.MaxChunk, [destination.PageCount], ReceiverRig.Devices);
        using var receiver = new PacketReceiver(io, limits.ForChannel(0), [destination], null, new RecordingPacketSink(1 << 20));
        var e = await Assert.ThrowsAsync<ChannelClosedException>(() => receiver.RunAsync(CancellationToken.None));
        Assert.Contains("RAM packet header", e.Message);
    }

    /// <summary>The bytes a PacketWriter sends for the block in packets of <paramref name="pagesPerPacket"/>, then End.</summary>
    private static async Task<byte[]> RecordAsync(RamBlock source, int pagesPerPacket)
    {
        var capture = new CaptureIo();
        using var writer = new PacketWriter(capture, 0, null, zeroDetection: true, ReceiverRig.MaxPages);
        var pages = new long[pagesPerPacket];
        for (var first = 0; first < source.PageCount; first += pagesPerPacket)
        {
            for (var i = 0; i < pagesPerPacket; i++)
            {
                pages[i] = first + i;
            }

            await writer.WriteRamAsync(source, 0, pages, pagesPerPacket, 1, CancellationToken.None);
        }

        await writer.WriteEndAsync(CancellationToken.None);
        return capture.Bytes.ToArray();
    }

    private sealed class CaptureIo : IChannelIo
    {
        public MemoryStream Bytes { get; } = new();

        public ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
        {
            Bytes.Write(buffer.Span);
            return ValueTask.FromResult(buffer.Length);
        }

        public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct) => throw new NotSupportedException();

        public void SendAll(ReadOnlySpan<SendSegment> segments, CancellationToken ct)
        {
            foreach (var segment in segments)
            {
                Bytes.Write(segment.Span);
            }
        }

        public void Abort() => Dispose();

        public void Dispose()
        {
        }
    }

    /// <summary>Hands out a recorded stream: each receive gets what it asks for (at most MaxPerReceive), 0 at the end.</summary>
    private sealed class ReplayIo(byte[] stream) : IChannelIo
    {
        private int _position;

        public int MaxPerReceive { get; init; } = int.MaxValue;

        public int Receives { get; private set; }

        public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct)
        {
            Receives++;
            var n = Math.Min(Math.Min(buffer.Length, MaxPerReceive), stream.Length - _position);
            stream.AsSpan(_position, n).CopyTo(buffer.Span);
            _position += n;
            return ValueTask.FromResult(n);
        }

        public ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct) => throw new NotSupportedException();

        public void SendAll(ReadOnlySpan<SendSegment> segments, CancellationToken ct) => throw new NotSupportedException();

        public void Abort() => Dispose();

        public void Dispose()
        {
        }
    }
}
