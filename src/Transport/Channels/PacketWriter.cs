using System.Buffers;
using System.Net.Sockets;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;

namespace Migration.Transport.Channels;

/// <summary>
/// Encodes and sends the packets of one source channel (docs/protocol.md). Used by one send loop at a time: the
/// channel's sender thread with the blocking, gathered methods (WriteRam, WriteDeviceChunk, WriteSync, WriteEnd: header
/// and payload in one sendmsg), or an async loop with the *Async methods (tests, tools).
/// RAM packets are encoded by this writer's <see cref="RamPacketEncoder"/> (zero pages, runs, staging, compression);
/// uncompressed normal pages go from guest memory straight to the socket (no copy) when they form few contiguous runs.
/// Buffers: the header buffer is rented from ArrayPool at creation and returned by <see cref="Dispose"/>, which also
/// disposes the encoder (its own rented buffers). Device payloads belong to the caller.
/// </summary>
public sealed class PacketWriter : IDisposable
{
    private readonly IChannelIo _socket;
    private readonly byte[] _head;
    private readonly RamPacketEncoder _ram;
    private readonly PacketChecksum _checksum = new();
    private bool _disposed;
    private int _corruptNext;

    public PacketWriter(Socket socket, int channelIndex, IRamCodec? codec, bool zeroDetection, int maxPagesPerPacket, bool earlyAbort = true)
        : this(new SocketChannelIo(socket), channelIndex, codec, zeroDetection, maxPagesPerPacket, earlyAbort)
    {
    }

    /// <param name="earlyAbort">
    /// Under a codec, send a RAM packet raw (codec None) when it looks incompressible or its frame is no smaller
    /// (docs/protocol.md, "Raw packets under a codec"); false for a receiver that does not take such packets.
    /// </param>
    public PacketWriter(IChannelIo io, int channelIndex, IRamCodec? codec, bool zeroDetection, int maxPagesPerPacket, bool earlyAbort = true)
    {
        _socket = io;
        _head = ArrayPool<byte>.Shared.Rent(RamPacketEncoder.MaxHeadLength(maxPagesPerPacket));
        _ram = new RamPacketEncoder(channelIndex, codec is { Id: CodecId.None } ? null : codec, zeroDetection, maxPagesPerPacket, earlyAbort);
    }

    /// <summary>
    /// Fault injection (tests, drills): the next packet goes out corrupted after its checksum was computed: a device
    /// chunk with one payload byte flipped, any other packet with one checksum bit flipped. Thread-safe.
    /// </summary>
    public void CorruptNextPacket() => Interlocked.Exchange(ref _corruptNext, 1);

    private uint MaybeCorrupt(uint checksum) => Interlocked.Exchange(ref _corruptNext, 0) == 1 ? checksum ^ 0x10 : checksum;

    /// <summary>Packets sent so far (reported in End for the receiver's cross-check).</summary>
    public ulong PacketsSent { get; private set; }

    /// <summary>
    /// RAM packets sent raw under a negotiated codec (early abort: they looked incompressible, see
    /// <see cref="CompressibilityProbe"/>, or their frame was no smaller). Counted once sent; read it on the send loop's
    /// thread or after the loop ended.
    /// </summary>
    public long RawRamPacketsUnderCodec { get; private set; }

    /// <summary>Bytes written to the socket so far.</summary>
    public long WireBytes { get; private set; }

    /// <summary>Sends one RAM packet for <paramref name="count"/> pages (ascending page indices) of a block.</summary>
    public async ValueTask<RamPacketResult> WriteRamAsync(RamBlock block, int blockIndex, long[] pages, int count, uint iteration, CancellationToken ct)
    {
        var plan = PrepareRam(block, blockIndex, pages, count, iteration);
        await SocketIo.SendAllAsync(_socket, _head.AsMemory(0, plan.HeadLength), ct).ConfigureAwait(false);
        if (plan.Payload != RamPayload.Direct)
        {
            var buffer = plan.Payload == RamPayload.Compressed ? _ram.Compressed! : _ram.Staging;
            await SocketIo.SendAllAsync(_socket, buffer.AsMemory(0, (int)plan.PayloadLength), ct).ConfigureAwait(false);
        }
        else
        {
            // Zero-copy: straight from guest memory. A page the guest changes meanwhile is dirty again and is
            // sent again in a later iteration; the final iteration runs with the guest stopped.
            for (var r = 0; r < plan.Runs; r++)
            {
                var (first, pageCount) = _ram.Run(r);
                await SocketIo.SendAllAsync(_socket, block.PagesMemory(first, pageCount), ct).ConfigureAwait(false);
            }
        }

        return Sent(plan);
    }

    /// <summary>
    /// Sends one RAM packet with blocking calls (a channel's sender thread): the header and the payload (the runs
    /// straight from guest memory, or the staging or compressed buffer) in one gathered send. No allocation.
    /// </summary>
    public unsafe RamPacketResult WriteRam(RamBlock block, int blockIndex, long[] pages, int count, uint iteration, CancellationToken ct)
    {
        var plan = PrepareRam(block, blockIndex, pages, count, iteration);
        Span<SendSegment> segments = stackalloc SendSegment[GatherSend.MaxSegments];
        fixed (byte* head = _head)
        fixed (byte* staging = _ram.Staging)
        fixed (byte* compressed = _ram.Compressed)
        {
            var n = 0;
            segments[n++] = new SendSegment(head, plan.HeadLength);
            switch (plan.Payload)
            {
                case RamPayload.Compressed:
                    segments[n++] = new SendSegment(compressed, (int)plan.PayloadLength);
                    break;
                case RamPayload.Staging:
                    segments[n++] = new SendSegment(staging, (int)plan.PayloadLength);
                    break;
                default:
                    // Zero-copy from guest memory (mapped for the block's lifetime), as in WriteRamAsync.
                    for (var r = 0; r < plan.Runs; r++)
                    {
                        var (first, pageCount) = _ram.Run(r);
                        segments[n++] = new SendSegment(block.BasePointer + (first << RamBlock.PageShift), pageCount << RamBlock.PageShift);
                    }

                    break;
            }

            _socket.SendAll(segments[..n], ct);
        }

        return Sent(plan);
    }

    private RamPacketResult Sent(in RamPlan plan)
    {
        PacketsSent++;
        if (plan.RawUnderCodec)
        {
            RawRamPacketsUnderCodec++;
        }

        var wire = plan.HeadLength + (long)plan.PayloadLength;
        WireBytes += wire;
        return new RamPacketResult(plan.Normal, plan.Zero, wire, plan.RawUnderCodec ? plan.Normal : 0);
    }

    /// <summary>Encodes the RAM packet (<see cref="RamPacketEncoder"/>) and writes its packet header into _head.</summary>
    private RamPlan PrepareRam(RamBlock block, int blockIndex, long[] pages, int count, uint iteration)
    {
        var plan = _ram.Prepare(block, blockIndex, pages, count, iteration, _head);
        new PacketHeader(PacketType.Ram, PacketFlags.None, plan.BodyLength, MaybeCorrupt(plan.Checksum)).WriteTo(_head);
        return plan;
    }

    /// <summary>Sends one device-state chunk (the payload is not compressed, whatever the RAM codec).</summary>
    public async ValueTask<long> WriteDeviceChunkAsync(DeviceChunkHeader header, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var corrupted = PrepareDeviceChunk(header, ref payload);
        try
        {
            await SocketIo.SendAllAsync(_socket, _head.AsMemory(0, PacketHeader.Size + DeviceChunkHeader.Size), ct).ConfigureAwait(false);
            if (!payload.IsEmpty)
            {
                await SocketIo.SendAllAsync(_socket, payload, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            if (corrupted is not null)
            {
                ArrayPool<byte>.Shared.Return(corrupted);
            }
        }

        return SentDevice(payload.Length);
    }

    /// <summary>Sends one device-state chunk with one blocking gathered send (header + payload); the caller's buffer is only read.</summary>
    public unsafe long WriteDeviceChunk(DeviceChunkHeader header, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var corrupted = PrepareDeviceChunk(header, ref payload);
        try
        {
            Span<SendSegment> segments = stackalloc SendSegment[2];
            fixed (byte* head = _head)
            fixed (byte* body = payload.Span)
            {
                segments[0] = new SendSegment(head, PacketHeader.Size + DeviceChunkHeader.Size);
                segments[1] = new SendSegment(body, payload.Length);
                _socket.SendAll(payload.IsEmpty ? segments[..1] : segments, ct);
            }
        }
        finally
        {
            if (corrupted is not null)
            {
                ArrayPool<byte>.Shared.Return(corrupted);
            }
        }

        return SentDevice(payload.Length);
    }

    /// <summary>Writes the chunk's headers into _head; under fault injection swaps the payload for a corrupted copy (returned to the caller to give back).</summary>
    private byte[]? PrepareDeviceChunk(DeviceChunkHeader header, ref ReadOnlyMemory<byte> payload)
    {
        header.WriteTo(_head.AsSpan(PacketHeader.Size));
        var checksum = _checksum.ComputeDevice(header, payload.Span);
        byte[]? corrupted = null;
        if (!payload.IsEmpty && Interlocked.Exchange(ref _corruptNext, 0) == 1)
        {
            // Fault injection: flip one payload byte after the checksum was computed (a copy; the caller's buffer is untouched).
            corrupted = ArrayPool<byte>.Shared.Rent(payload.Length);
            payload.Span.CopyTo(corrupted);
            corrupted[payload.Length / 2] ^= 0x5A;
            payload = corrupted.AsMemory(0, payload.Length);
        }

        new PacketHeader(PacketType.DeviceState, PacketFlags.None, header.ExpectedBodyLength, MaybeCorrupt(checksum)).WriteTo(_head);
        return corrupted;
    }

    private long SentDevice(int payloadLength)
    {
        PacketsSent++;
        var wire = PacketHeader.Size + DeviceChunkHeader.Size + (long)payloadLength;
        WireBytes += wire;
        return wire;
    }

    /// <summary>Ends precopy iteration <paramref name="iteration"/> on this channel.</summary>
    public async ValueTask WriteSyncAsync(uint iteration, CancellationToken ct)
    {
        var body = _head.AsSpan(PacketHeader.Size, SyncPacket.Size);
        new SyncPacket(iteration).WriteTo(body);
        new PacketHeader(PacketType.Sync, PacketFlags.None, SyncPacket.Size, MaybeCorrupt(PacketChecksum.Compute(body))).WriteTo(_head);
        await SocketIo.SendAllAsync(_socket, _head.AsMemory(0, PacketHeader.Size + SyncPacket.Size), ct).ConfigureAwait(false);
        PacketsSent++;
        WireBytes += PacketHeader.Size + SyncPacket.Size;
    }

    /// <summary>Ends the stream on this channel; carries the number of packets sent before it.</summary>
    public async ValueTask WriteEndAsync(CancellationToken ct)
    {
        var body = _head.AsSpan(PacketHeader.Size, EndPacket.Size);
        new EndPacket(PacketsSent).WriteTo(body);
        new PacketHeader(PacketType.End, PacketFlags.None, EndPacket.Size, MaybeCorrupt(PacketChecksum.Compute(body))).WriteTo(_head);
        await SocketIo.SendAllAsync(_socket, _head.AsMemory(0, PacketHeader.Size + EndPacket.Size), ct).ConfigureAwait(false);
        WireBytes += PacketHeader.Size + EndPacket.Size;
    }

    /// <summary>Blocking variant of <see cref="WriteSyncAsync"/> (a channel's sender thread).</summary>
    public unsafe void WriteSync(uint iteration, CancellationToken ct)
    {
        var body = _head.AsSpan(PacketHeader.Size, SyncPacket.Size);
        new SyncPacket(iteration).WriteTo(body);
        new PacketHeader(PacketType.Sync, PacketFlags.None, SyncPacket.Size, MaybeCorrupt(PacketChecksum.Compute(body))).WriteTo(_head);
        SendHead(PacketHeader.Size + SyncPacket.Size, ct);
        PacketsSent++;
        WireBytes += PacketHeader.Size + SyncPacket.Size;
    }

    /// <summary>Blocking variant of <see cref="WriteEndAsync"/> (a channel's sender thread).</summary>
    public void WriteEnd(CancellationToken ct)
    {
        var body = _head.AsSpan(PacketHeader.Size, EndPacket.Size);
        new EndPacket(PacketsSent).WriteTo(body);
        new PacketHeader(PacketType.End, PacketFlags.None, EndPacket.Size, MaybeCorrupt(PacketChecksum.Compute(body))).WriteTo(_head);
        SendHead(PacketHeader.Size + EndPacket.Size, ct);
        WireBytes += PacketHeader.Size + EndPacket.Size;
    }

    private unsafe void SendHead(int length, CancellationToken ct)
    {
        Span<SendSegment> segment = stackalloc SendSegment[1];
        fixed (byte* head = _head)
        {
            segment[0] = new SendSegment(head, length);
            _socket.SendAll(segment, ct);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        ArrayPool<byte>.Shared.Return(_head);
        _ram.Dispose();
    }
}

/// <summary>What one RAM packet carried.</summary>
/// <param name="UncompressedPages">Normal pages sent raw although a codec was negotiated (early abort), else 0.</param>
public readonly record struct RamPacketResult(int NormalPages, int ZeroPages, long WireBytes, int UncompressedPages = 0);
