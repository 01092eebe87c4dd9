using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Migration.Devices.Ram;
using Migration.Transport.Flow;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;

namespace Migration.Transport.Channels;

/// <summary>
/// The receive loop of one destination channel (docs/protocol.md): reads each packet header, dispatches by type, and
/// receives device chunks, Syncs and the End itself; RAM packets go to its <see cref="RamPacketReceiver"/>, which
/// validates them and writes their pages into guest memory. Every field is validated before use: the header, the type
/// header against the migration's limits, the checksum of the metadata (and of device payloads) before anything is
/// handed on. Device chunks are read into buffers rented from the node's DeviceChunkBuffers only after their length
/// was reserved in the budget, and handed (with their ownership) to the sink.
/// Iteration rule: RAM packets carry the current iteration; Sync(k) must match it, then the loop waits at the
/// barrier and the next iteration is k+1. Counters are written by the loop and read by others (Volatile).
/// Reads: the fixed parts of a packet come from one receive into a small read-ahead buffer (<see cref="PacketReadBuffer"/>),
/// page data straight into guest memory; the per-packet async methods use pooled builders, so a packet costs no
/// allocation in steady state.
/// Ownership and threading: <see cref="RunAsync"/> runs once, on one task; the read buffer, checksum and RAM receiver
/// are owned here and used only by that loop. Buffers: rented at creation (here and by the RAM receiver), returned by
/// <see cref="Dispose"/> (after the loop has ended).
/// </summary>
public sealed class PacketReceiver : IDisposable
{
    private readonly ReceiveContext _context;
    private readonly IInboundPacketSink _sink;
    private readonly PacketReadBuffer _reader;
    private readonly int _readAhead;
    private readonly RamPacketReceiver _ram;
    private readonly PacketChecksum _checksum = new();
    private uint _iteration;
    private long _lastActivity = Stopwatch.GetTimestamp();
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
        _sink = sink;
        var maxPages = context.Limits.MaxPagesPerPacket;
        // One receive brings a packet's fixed parts: header, type header and (for a full RAM packet) its offsets.
        _readAhead = PacketHeader.Size + RamPacketHeader.Size + (maxPages * sizeof(ulong));
        _reader = new PacketReadBuffer(io, _readAhead, context.ChannelIndex)
        {
            OnReceived = () => Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp()),
        };
        _ram = new RamPacketReceiver(_reader, _readAhead, context, blocks, codec, written, _checksum);
    }

    private int Channel => _context.ChannelIndex;

    public long NormalPages => _ram.NormalPages;
    public long ZeroPages => _ram.ZeroPages;
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
                    await _ram.ReceiveAsync(header, _iteration, ct).ConfigureAwait(false);
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

    /// <summary>Exactly buffer.Length bytes of chunk data, straight into <paramref name="buffer"/> (read-ahead bytes first).</summary>
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
        _ram.Dispose();
    }
}
