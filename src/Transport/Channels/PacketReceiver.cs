using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Migration.Devices.Ram;
using Migration.Transport.Flow;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Migration.Transport.ZeroPages;

namespace Migration.Transport.Channels;

/// <summary>
/// The receive loop of one destination channel (docs/protocol.md). Every field is validated before use:
/// the header, the type header against the migration's limits, the page offsets against the block (so a bad
/// offset never reaches guest memory), the checksum of the metadata (and of device and compressed payloads)
/// before anything is written. Uncompressed pages are received straight into guest RAM; compressed ones are
/// decompressed straight into it when contiguous. Device chunks are read into buffers rented from the node's
/// DeviceChunkBuffers only after their length was reserved in the budget, and handed (with their ownership) to the sink.
/// Iteration rule: RAM packets carry the current iteration; Sync(k) must match it, then the loop waits at the
/// barrier and the next iteration is k+1. Counters are written by the loop and read by others (Volatile).
/// Reads: the fixed parts of a packet come from one receive into a small read-ahead buffer (<see cref="PacketReadBuffer"/>),
/// page data straight into guest memory; the per-packet async methods use pooled builders, so a packet costs no
/// allocation in steady state.
/// Buffers: rented at creation, returned by <see cref="Dispose"/> (after the loop has ended).
/// </summary>
public sealed class PacketReceiver : IDisposable
{
    private readonly ReceiveContext _context;
    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly IRamCodec? _codec;
    private readonly IInboundPacketSink _sink;
    private readonly IRamWriteObserver? _written;
    private readonly PacketReadBuffer _reader;
    private readonly int _readAhead;
    private readonly ulong[] _offsets;

    private readonly byte[]? _payload;
    private readonly byte[] _staging;
    private readonly (long First, int Count)[] _runs;
    private readonly PacketChecksum _checksum = new();
    private uint _iteration;
    private long _lastActivity = Stopwatch.GetTimestamp();
    private long _normalPages;
    private long _zeroPages;
    private ulong _packets;

    public PacketReceiver(Socket socket, ReceiveContext context, IReadOnlyList<RamBlock> blocks, IRamCodec? codec, IInboundPacketSink sink)
        : this(new SocketChannelIo(socket), context, blocks, codec, sink)
    {
    }

    /// <param name="firstIteration">
    /// The iteration the channel starts in: 1 for a new migration; for a reconnected channel, one past the last Sync
    /// its previous connection delivered (the source resends the Syncs from there, docs/protocol.md "Reconnect").
    /// </param>
    /// <param name="written">Told the pages of every RAM packet before their content lands and once they are in guest memory (digests, received pages), and asked which zero pages may need clearing; optional (then every zero page is checked).</param>
    public PacketReceiver(IChannelIo io, ReceiveContext context, IReadOnlyList<RamBlock> blocks, IRamCodec? codec, IInboundPacketSink sink, uint firstIteration = 1,
        IRamWriteObserver? written = null)
    {
        if (firstIteration == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(firstIteration), firstIteration, "iterations are numbered from 1");
        }

        _iteration = firstIteration;
        _context = context;
        _blocks = blocks;
        _codec = codec is { Id: CodecId.None } ? null : codec;
        _sink = sink;
        _written = written;
        var maxPages = context.Limits.MaxPagesPerPacket;
        // One receive brings a packet's fixed parts: header, type header and (for a full RAM packet) its offsets.
        _readAhead = PacketHeader.Size + RamPacketHeader.Size + (maxPages * sizeof(ulong));
        _reader = new PacketReadBuffer(io, _readAhead, context.ChannelIndex)
        {
            OnReceived = () => Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp()),
        };
        _offsets = ArrayPool<ulong>.Shared.Rent(maxPages);
        _staging = ArrayPool<byte>.Shared.Rent(maxPages * RamBlock.PageSize);
        _runs = new (long, int)[maxPages];
        if (_codec is not null)
        {
            _payload = ArrayPool<byte>.Shared.Rent((int)RamPacketHeader.MaxRamPayload(maxPages));
        }
    }

    private int Channel => _context.ChannelIndex;

    public long NormalPages => Volatile.Read(ref _normalPages);
    public long ZeroPages => Volatile.Read(ref _zeroPages);
    public long WireBytes => _reader.ReceivedBytes;

    /// <summary>Socket receive calls so far (diagnostics: at most one per packet for the fixed parts).</summary>
    public long Receives => _reader.Receives;

    /// <summary>The iteration the loop is in: every Sync before it was delivered (passed its barrier).</summary>
    public uint Iteration => Volatile.Read(ref _iteration);

    /// <summary>Stopwatch timestamp of the last bytes received (for the idle timeout).</summary>
    public long LastActivity => Volatile.Read(ref _lastActivity);

    /// <summary>Runs until End (returns it) or throws (ProtocolViolationException, ChannelClosedException, socket errors).</summary>
    public async Task<EndPacket> RunAsync(CancellationToken ct)
    {
        while (true)
        {
            var head = await _reader.ReadAsync(PacketHeader.Size, _readAhead, "packet header", ct).ConfigureAwait(false);
            Check(PacketHeader.TryRead(head.Span, _context, out var header, out var error), error);
            switch (header.Type)
            {
                case PacketType.Ram:
                    await ReceiveRamAsync(header, ct).ConfigureAwait(false);
                    break;
                case PacketType.DeviceState:
                    await ReceiveDeviceChunkAsync(header, ct).ConfigureAwait(false);
                    break;
                case PacketType.Sync:
                    await ReceiveSyncAsync(header, ct).ConfigureAwait(false);
                    break;
                case PacketType.End:
                    return await ReceiveEndAsync(header, ct).ConfigureAwait(false);
                default:
                    throw new ProtocolViolationException(Channel, $"channel {Channel}: unexpected packet type {header.Type}");
            }

            _packets++;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveRamAsync(PacketHeader header, CancellationToken ct)
    {
        var typeHead = await _reader.ReadAsync(RamPacketHeader.Size, _readAhead - PacketHeader.Size, "RAM packet header", ct).ConfigureAwait(false);
        Check(RamPacketHeader.TryRead(typeHead.Span, _context, header.BodyLength, out var ram, out var error), error);
        if (ram.Iteration != _iteration)
        {
            throw Violation($"RAM packet of iteration {ram.Iteration} while the channel is in iteration {_iteration}");
        }

        var offsetBytes = await _reader.ReadAsync(ram.OffsetArrayLength, ram.OffsetArrayLength, "page offsets", ct).ConfigureAwait(false);
        var offsets = _offsets.AsSpan(0, ram.PageCount);
        Check(RamPageOffsets.TryRead(offsetBytes.Span, ram, _context, offsets, out error), error);
        Check(RamPageOffsets.Validate(offsets, ram, _context, out error), error);

        // Under a negotiated codec a packet may still come raw (codec None: the sender found it incompressible).
        var compressed = ram.Codec != CodecId.None && ram.NormalPageCount > 0;
        if (compressed && (_codec is null || _payload is null))
        {
            throw Violation($"RAM packet compressed with {ram.Codec}, but this channel was opened without a codec");
        }

        var payload = ReadOnlyMemory<byte>.Empty;
        if (compressed)
        {
            payload = _payload.AsMemory(0, (int)ram.PayloadLength);
            await Receive(_payload.AsMemory(0, (int)ram.PayloadLength), "compressed pages", ct).ConfigureAwait(false);
        }

        var checksum = _checksum.ComputeRam(ram, offsetBytes.Span, payload.Span);
        if (checksum != header.Checksum)
        {
            throw Violation($"RAM packet checksum 0x{header.Checksum:X8} does not match its contents (0x{checksum:X8})");
        }

        var block = _blocks[ram.BlockIndex];
        var normal = (int)ram.NormalPageCount;
        if (normal > 0)
        {
            _written?.OnPagesArriving(ram.BlockIndex, _offsets.AsSpan(0, normal));
            if (!compressed)
            {
                await ReceivePagesAsync(block, _offsets.AsMemory(0, normal), ct).ConfigureAwait(false);
            }
            else
            {
                DecompressPages(block, payload.Span, normal);
            }
        }

        // Zero pages: a page known zero (fresh memory never written in this migration) is left alone; any other is
        // read and cleared if it is not zero already.
        for (var i = normal; i < ram.PageCount; i++)
        {
            var index = (long)(_offsets[i] >> RamBlock.PageShift);
            if (_written is not null && !_written.MayHoldData(ram.BlockIndex, index))
            {
                continue;
            }

            var page = block.Page(index);
            if (!ZeroPageDetector.IsAllZero(page))
            {
                page.Clear();
            }
        }

        _written?.OnPagesWritten(ram.BlockIndex, _offsets.AsSpan(0, ram.PageCount), normal);
        Interlocked.Add(ref _normalPages, normal);
        Interlocked.Add(ref _zeroPages, ram.ZeroPageCount);
    }

    /// <summary>
    /// Receives the page data straight into guest memory, one receive per contiguous run. A packet of many short runs
    /// (scattered dirty pages) is received into the staging buffer in one call and then copied to its pages: one
    /// copy instead of dozens of 4 KiB receives.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceivePagesAsync(RamBlock block, ReadOnlyMemory<ulong> offsets, CancellationToken ct)
    {
        var runs = PageRuns.Collect(offsets.Span, _runs);
        if (runs > PageRuns.MaxDirect)
        {
            var bytes = offsets.Length * RamBlock.PageSize;
            await Receive(_staging.AsMemory(0, bytes), "page data", ct).ConfigureAwait(false);
            for (var p = 0; p < offsets.Length; p++)
            {
                _staging.AsSpan(p * RamBlock.PageSize, RamBlock.PageSize).CopyTo(block.Page((long)(offsets.Span[p] >> RamBlock.PageShift)));
            }

            return;
        }

        for (var r = 0; r < runs; r++)
        {
            await Receive(block.PagesMemory(_runs[r].First, _runs[r].Count), "page data", ct).ConfigureAwait(false);
        }
    }

    private void DecompressPages(RamBlock block, ReadOnlySpan<byte> compressed, int normal)
    {
        var first = (long)(_offsets[0] >> RamBlock.PageShift);
        var last = (long)(_offsets[normal - 1] >> RamBlock.PageShift);
        try
        {
            if (last - first + 1 == normal)
            {
                // Offsets are strictly ascending, so first..last contiguous means exactly these pages.
                _codec!.Decompress(compressed, block.Pages(first, normal));
                return;
            }

            var staging = _staging.AsSpan(0, normal * RamBlock.PageSize);
            _codec!.Decompress(compressed, staging);
            for (var i = 0; i < normal; i++)
            {
                staging.Slice(i * RamBlock.PageSize, RamBlock.PageSize).CopyTo(block.Page((long)(_offsets[i] >> RamBlock.PageShift)));
            }
        }
        catch (CodecException e)
        {
            throw Violation($"RAM payload does not decompress: {e.Message}");
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveDeviceChunkAsync(PacketHeader header, CancellationToken ct)
    {
        var typeHead = await _reader.ReadAsync(DeviceChunkHeader.Size, DeviceChunkHeader.Size, "device chunk header", ct).ConfigureAwait(false);
        Check(DeviceChunkHeader.TryRead(typeHead.Span, _context, header.BodyLength, out var chunk, out var error), error);
        var length = (int)chunk.Length;
        if (!_sink.TryReserveDeviceBytes(length, out var budgetState))
        {
            throw Violation($"device {chunk.DeviceIndex} chunk {chunk.ChunkIndex} of {length} bytes beyond credit ({budgetState})");
        }

        // Rented from the node's chunk pool; ownership passes to the sink with the chunk (gate, then loader, returns it).
        var buffer = length == 0 ? [] : DeviceChunkBuffers.Shared.Rent(length);
        try
        {
            await Receive(buffer.AsMemory(0, length), "device chunk", ct).ConfigureAwait(false);
            var checksum = _checksum.ComputeDevice(chunk, buffer.AsSpan(0, length));
            if (checksum != header.Checksum)
            {
                throw Violation($"device {chunk.DeviceIndex} chunk {chunk.ChunkIndex}: checksum 0x{header.Checksum:X8} does not match its contents (0x{checksum:X8})");
            }
        }
        catch
        {
            // Not delivered: the buffer goes back to the pool and the reservation back to the budget (a lost
            // connection is recoverable, and the source resends this chunk, which must find room again).
            if (length > 0)
            {
                DeviceChunkBuffers.Shared.Return(buffer);
            }

            _sink.ReleaseDeviceBytes(length);
            throw;
        }

        _sink.OnDeviceChunk(chunk, buffer);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveSyncAsync(PacketHeader header, CancellationToken ct)
    {
        var body = await _reader.ReadAsync(SyncPacket.Size, SyncPacket.Size, "sync", ct).ConfigureAwait(false);
        Check(SyncPacket.TryRead(body.Span, Channel, out var sync, out var error), error);
        CheckBodyChecksum(header, body.Span, "sync");
        if (sync.Iteration != _iteration)
        {
            throw Violation($"sync for iteration {sync.Iteration} while the channel is in iteration {_iteration}");
        }

        await _sink.OnSyncAsync(sync.Iteration).ConfigureAwait(false);
        Volatile.Write(ref _iteration, _iteration + 1);
        Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<EndPacket> ReceiveEndAsync(PacketHeader header, CancellationToken ct)
    {
        var body = await _reader.ReadAsync(EndPacket.Size, EndPacket.Size, "end", ct).ConfigureAwait(false);
        Check(EndPacket.TryRead(body.Span, Channel, out var end, out var error), error);
        CheckBodyChecksum(header, body.Span, "end");
        Check(end.Matches(_packets, Channel, out error), error);
        return end;
    }

    private void CheckBodyChecksum(PacketHeader header, ReadOnlySpan<byte> body, string what)
    {
        var checksum = PacketChecksum.Compute(body);
        if (checksum != header.Checksum)
        {
            throw Violation($"{what} checksum 0x{header.Checksum:X8} does not match its contents (0x{checksum:X8})");
        }
    }

    /// <summary>Exactly buffer.Length bytes of page or chunk data, straight into <paramref name="buffer"/> (read-ahead bytes first).</summary>
    private ValueTask Receive(Memory<byte> buffer, string what, CancellationToken ct) => _reader.ReadIntoAsync(buffer, what, ct);

    private void Check(bool ok, string error)
    {
        if (!ok)
        {
            throw new ProtocolViolationException(Channel, error);
        }
    }

    private ProtocolViolationException Violation(string message) => new(Channel, $"channel {Channel}: {message}");

    public void Dispose()
    {
        _reader.Dispose();
        ArrayPool<ulong>.Shared.Return(_offsets);
        if (_payload is not null)
        {
            ArrayPool<byte>.Shared.Return(_payload);
        }

        ArrayPool<byte>.Shared.Return(_staging);
    }
}
