using System.Buffers;
using System.Net.Sockets;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Migration.Transport.ZeroPages;

namespace Migration.Transport.Channels;

/// <summary>
/// Encodes and sends the packets of one source channel (docs/protocol.md). Used by one send loop at a time: the
/// channel's sender thread with the blocking, gathered methods (WriteRam, WriteDeviceChunk, WriteSync, WriteEnd: header
/// and payload in one sendmsg), or an async loop with the *Async methods (tests, tools).
/// RAM: zero pages are detected here (in the channel, so detection runs in parallel over the channels, as in
/// QEMU multifd) and cost only their offset; uncompressed normal pages go from guest memory straight to the
/// socket (no copy) when they form few contiguous runs, else they are gathered into one staging buffer (one copy);
/// compressed pages are gathered and compressed with this channel's codec instance.
/// Buffers: the header, offset, staging and compression buffers are rented from ArrayPool at creation and
/// returned by <see cref="Dispose"/>. Device payloads belong to the caller.
/// </summary>
public sealed class PacketWriter : IDisposable
{
    /// <summary>More contiguous runs than this in one packet are gathered into the staging buffer (one copy, one send).</summary>

    private readonly IChannelIo _socket;
    private readonly int _channel;
    private readonly IRamCodec? _codec;
    private readonly bool _zeroDetection;
    private readonly int _maxPages;
    private readonly byte[] _head;
    private readonly ulong[] _offsets;
    private readonly ulong[] _zeroOffsets;
    private readonly byte[] _staging;
    private readonly byte[]? _compressed;
    private readonly (long First, int Count)[] _runs;
    private readonly PacketChecksum _checksum = new();
    private bool _disposed;
    private int _corruptNext;

    public PacketWriter(Socket socket, int channelIndex, IRamCodec? codec, bool zeroDetection, int maxPagesPerPacket)
        : this(new SocketChannelIo(socket), channelIndex, codec, zeroDetection, maxPagesPerPacket)
    {
    }

    public PacketWriter(IChannelIo io, int channelIndex, IRamCodec? codec, bool zeroDetection, int maxPagesPerPacket)
    {
        _socket = io;
        _channel = channelIndex;
        _codec = codec is { Id: CodecId.None } ? null : codec;
        _zeroDetection = zeroDetection;
        _maxPages = maxPagesPerPacket;
        _head = ArrayPool<byte>.Shared.Rent(PacketHeader.Size + RamPacketHeader.Size + (maxPagesPerPacket * sizeof(ulong)));
        _offsets = ArrayPool<ulong>.Shared.Rent(maxPagesPerPacket);
        _zeroOffsets = ArrayPool<ulong>.Shared.Rent(maxPagesPerPacket);
        _staging = ArrayPool<byte>.Shared.Rent(maxPagesPerPacket * RamBlock.PageSize);
        _compressed = _codec is null ? null : ArrayPool<byte>.Shared.Rent(_codec.MaxCompressedLength(maxPagesPerPacket * RamBlock.PageSize));
        _runs = new (long, int)[maxPagesPerPacket];
    }

    /// <summary>
    /// Fault injection (tests, drills): the next packet goes out corrupted after its checksum was computed: a device
    /// chunk with one payload byte flipped, any other packet with one checksum bit flipped. Thread-safe.
    /// </summary>
    public void CorruptNextPacket() => Interlocked.Exchange(ref _corruptNext, 1);

    private uint MaybeCorrupt(uint checksum) => Interlocked.Exchange(ref _corruptNext, 0) == 1 ? checksum ^ 0x10 : checksum;

    /// <summary>Packets sent so far (reported in End for the receiver's cross-check).</summary>
    public ulong PacketsSent { get; private set; }

    /// <summary>Bytes written to the socket so far.</summary>
    public long WireBytes { get; private set; }

    /// <summary>Sends one RAM packet for <paramref name="count"/> pages (ascending page indices) of a block.</summary>
    public async ValueTask<RamPacketResult> WriteRamAsync(RamBlock block, int blockIndex, long[] pages, int count, uint iteration, CancellationToken ct)
    {
        var plan = PrepareRam(block, blockIndex, pages, count, iteration);
        await SocketIo.SendAllAsync(_socket, _head.AsMemory(0, plan.HeadLength), ct).ConfigureAwait(false);
        if (plan.Payload != RamPayload.Direct)
        {
            var buffer = plan.Payload == RamPayload.Compressed ? _compressed! : _staging;
            await SocketIo.SendAllAsync(_socket, buffer.AsMemory(0, (int)plan.PayloadLength), ct).ConfigureAwait(false);
        }
        else
        {
            // Zero-copy: straight from guest memory. A page the guest changes meanwhile is dirty again and is
            // sent again in a later iteration; the final iteration runs with the guest stopped.
            for (var r = 0; r < plan.Runs; r++)
            {
                await SocketIo.SendAllAsync(_socket, block.PagesMemory(_runs[r].First, _runs[r].Count), ct).ConfigureAwait(false);
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
        fixed (byte* staging = _staging)
        fixed (byte* compressed = _compressed)
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
                        segments[n++] = new SendSegment(block.BasePointer + (_runs[r].First << RamBlock.PageShift), _runs[r].Count << RamBlock.PageShift);
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
        var wire = plan.HeadLength + (long)plan.PayloadLength;
        WireBytes += wire;
        return new RamPacketResult(plan.Normal, plan.Zero, wire);
    }

    private enum RamPayload
    {
        Direct,
        Staging,
        Compressed,
    }

    /// <summary>A RAM packet encoded into the head buffer, with where its payload is.</summary>
    private readonly record struct RamPlan(int HeadLength, int Runs, RamPayload Payload, uint PayloadLength, int Normal, int Zero);

    /// <summary>Classifies the pages, gathers or compresses the payload if needed, and writes all headers into _head.</summary>
    private RamPlan PrepareRam(RamBlock block, int blockIndex, long[] pages, int count, uint iteration)
    {
        if (count < 1 || count > _maxPages)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"1..{_maxPages} pages per packet");
        }

        // Classify: normal offsets go to _offsets, zero ones to _zeroOffsets; then the zero ones follow the normal ones.
        var normal = 0;
        var zero = 0;
        for (var i = 0; i < count; i++)
        {
            var p = pages[i];
            if (_zeroDetection && ZeroPageDetector.IsZeroPage(block.Page(p)))
            {
                _zeroOffsets[zero++] = (ulong)p << RamBlock.PageShift;
            }
            else
            {
                _offsets[normal++] = (ulong)p << RamBlock.PageShift;
            }
        }

        _zeroOffsets.AsSpan(0, zero).CopyTo(_offsets.AsSpan(normal));

        var runs = PageRuns.Collect(_offsets.AsSpan(0, normal), _runs);
        ReadOnlySpan<byte> payload = default;
        var kind = RamPayload.Direct;
        uint payloadLength = (uint)(normal * RamBlock.PageSize);
        if (_codec is not null && normal > 0)
        {
            Gather(block, runs, normal);
            var n = _codec.Compress(_staging.AsSpan(0, normal * RamBlock.PageSize), _compressed);
            payload = _compressed.AsSpan(0, n);
            payloadLength = (uint)n;
            kind = RamPayload.Compressed;
        }
        else if (runs > PageRuns.MaxDirect)
        {
            Gather(block, runs, normal);
            payload = _staging.AsSpan(0, normal * RamBlock.PageSize);
            kind = RamPayload.Staging;
        }

        var header = new RamPacketHeader((ushort)blockIndex, _codec?.Id ?? CodecId.None, iteration, (uint)normal, (uint)zero, payloadLength);
        var offsetBytes = _head.AsSpan(PacketHeader.Size + RamPacketHeader.Size, count * sizeof(ulong));
        RamPageOffsets.Write(_offsets.AsSpan(0, count), offsetBytes);
        header.WriteTo(_head.AsSpan(PacketHeader.Size));
        var checksum = MaybeCorrupt(_checksum.ComputeRam(header, offsetBytes, payload));
        new PacketHeader(PacketType.Ram, PacketFlags.None, header.ExpectedBodyLength, checksum).WriteTo(_head);

        var headLength = PacketHeader.Size + RamPacketHeader.Size + (count * sizeof(ulong));
        return new RamPlan(headLength, runs, kind, payloadLength, normal, zero);
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

    private void Gather(RamBlock block, int runs, int normal)
    {
        var at = 0;
        for (var r = 0; r < runs; r++)
        {
            var bytes = _runs[r].Count * RamBlock.PageSize;
            block.Pages(_runs[r].First, _runs[r].Count).CopyTo(_staging.AsSpan(at, bytes));
            at += bytes;
        }

        if (at != normal * RamBlock.PageSize)
        {
            throw new InvalidOperationException($"channel {_channel}: gathered {at} bytes for {normal} pages");
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
        ArrayPool<ulong>.Shared.Return(_offsets);
        ArrayPool<ulong>.Shared.Return(_zeroOffsets);
        ArrayPool<byte>.Shared.Return(_staging);
        if (_compressed is not null)
        {
            ArrayPool<byte>.Shared.Return(_compressed);
        }
    }
}

/// <summary>What one RAM packet carried.</summary>
public readonly record struct RamPacketResult(int NormalPages, int ZeroPages, long WireBytes);
