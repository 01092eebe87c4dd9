using System.Buffers;
using System.Runtime.CompilerServices;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Migration.Transport.ZeroPages;

namespace Migration.Transport.Channels;

/// <summary>
/// The RAM half of one destination channel's receive loop (<see cref="PacketReceiver"/>): reads the rest of a RAM
/// packet whose packet header the loop has read and validated, and writes its pages into guest memory. Every field is
/// validated before use: the type header against the migration's limits and the channel's iteration, the page offsets
/// against the block (so a bad offset never reaches guest memory), the checksum of the metadata (and of a compressed
/// payload) before anything is written. Uncompressed pages are received straight into guest RAM; compressed ones are
/// decompressed straight into it when contiguous. Zero pages known zero are left alone, others cleared if not zero.
/// The per-packet async methods use pooled builders, so a packet costs no allocation in steady state.
/// Ownership and threading: owned by one PacketReceiver and called only by its loop (one packet at a time); it reads
/// through the loop's <see cref="PacketReadBuffer"/> and shares the loop's <see cref="PacketChecksum"/> (both owned by
/// the PacketReceiver). The page counters are written by the loop and read by others (Volatile).
/// Buffers: the offsets, staging and (under a codec) payload buffers are rented from ArrayPool.Shared at creation and
/// returned by <see cref="Dispose"/>, which the PacketReceiver calls after the loop has ended.
/// </summary>
internal sealed class RamPacketReceiver : IDisposable
{
    private readonly PacketReadBuffer _reader;
    private readonly ReceiveContext _context;
    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly IRamCodec? _codec;
    private readonly IRamWriteObserver? _written;
    private readonly PacketChecksum _checksum;
    private readonly int _readAhead;
    private readonly ulong[] _offsets;

    private readonly byte[]? _payload;
    private readonly byte[] _staging;
    private readonly (long First, int Count)[] _runs;
    private long _normalPages;
    private long _zeroPages;

    /// <param name="reader">The loop's read-ahead buffer (owned and disposed by the PacketReceiver).</param>
    /// <param name="readAhead">The reader's read-ahead size: packet header, RAM type header and a full packet's offsets.</param>
    /// <param name="codec">The channel's negotiated codec; codec None counts as none.</param>
    /// <param name="written">See the PacketReceiver's parameter of the same name; optional (then every zero page is checked).</param>
    /// <param name="checksum">The loop's checksum (owned by the PacketReceiver, used one packet at a time).</param>
    public RamPacketReceiver(PacketReadBuffer reader, int readAhead, ReceiveContext context, IReadOnlyList<RamBlock> blocks, IRamCodec? codec,
        IRamWriteObserver? written, PacketChecksum checksum)
    {
        _reader = reader;
        _readAhead = readAhead;
        _context = context;
        _blocks = blocks;
        _codec = codec is { Id: CodecId.None } ? null : codec;
        _written = written;
        _checksum = checksum;
        var maxPages = context.Limits.MaxPagesPerPacket;
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

    /// <summary>
    /// Receives the RAM packet that <paramref name="header"/> announced, in the channel's iteration
    /// <paramref name="iteration"/>; throws ProtocolViolationException (or the reader's exceptions) on anything else.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReceiveAsync(PacketHeader header, uint iteration, CancellationToken ct)
    {
        var typeHead = await _reader.ReadAsync(RamPacketHeader.Size, _readAhead - PacketHeader.Size, "RAM packet header", ct).ConfigureAwait(false);
        Check(RamPacketHeader.TryRead(typeHead.Span, _context, header.BodyLength, out var ram, out var error), error);
        if (ram.Iteration != iteration)
        {
            throw Violation($"RAM packet of iteration {ram.Iteration} while the channel is in iteration {iteration}");
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

    /// <summary>Exactly buffer.Length bytes of page data, straight into <paramref name="buffer"/> (read-ahead bytes first).</summary>
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
        ArrayPool<ulong>.Shared.Return(_offsets);
        if (_payload is not null)
        {
            ArrayPool<byte>.Shared.Return(_payload);
        }

        ArrayPool<byte>.Shared.Return(_staging);
    }
}
