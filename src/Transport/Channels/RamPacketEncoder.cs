using System.Buffers;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Migration.Transport.ZeroPages;

namespace Migration.Transport.Channels;

/// <summary>
/// Encodes one RAM packet of a source channel (docs/protocol.md, "Packets") for <see cref="PacketWriter"/>: classifies
/// the pages (zero pages cost only their offset, detected here so detection runs in parallel over the channels, as in
/// QEMU multifd), writes the RAM header and the offsets into the caller's head buffer, and decides where the payload
/// is: straight from guest memory in a few contiguous runs (<see cref="RamPayload.Direct"/>, no copy), gathered into
/// the staging buffer (one copy), or gathered and compressed with this channel's codec instance. The packet header's
/// checksum is the writer's to finish (it may corrupt it under fault injection).
/// Buffers: the offset, staging and compression buffers are rented from ArrayPool at creation, owned by this encoder
/// and returned by <see cref="Dispose"/> (called by the writer's Dispose). Used by one send loop at a time.
/// </summary>
internal sealed class RamPacketEncoder : IDisposable
{
    private readonly int _channel;
    private readonly IRamCodec? _codec;
    private readonly bool _earlyAbort;
    private readonly bool _zeroDetection;
    private readonly int _maxPages;
    private readonly ulong[] _offsets;
    private readonly ulong[] _zeroOffsets;
    private readonly (long First, int Count)[] _runs;
    private readonly PacketChecksum _checksum = new();
    private bool _disposed;

    /// <param name="codec">The channel's codec instance, or null for uncompressed pages.</param>
    /// <param name="earlyAbort">Under a codec, send raw what looks incompressible or does not shrink; else compress every packet.</param>
    public RamPacketEncoder(int channelIndex, IRamCodec? codec, bool zeroDetection, int maxPagesPerPacket, bool earlyAbort = true)
    {
        _channel = channelIndex;
        _codec = codec;
        _earlyAbort = earlyAbort;
        _zeroDetection = zeroDetection;
        _maxPages = maxPagesPerPacket;
        _offsets = ArrayPool<ulong>.Shared.Rent(maxPagesPerPacket);
        _zeroOffsets = ArrayPool<ulong>.Shared.Rent(maxPagesPerPacket);
        Staging = ArrayPool<byte>.Shared.Rent(maxPagesPerPacket * RamBlock.PageSize);
        Compressed = _codec is null ? null : ArrayPool<byte>.Shared.Rent(_codec.MaxCompressedLength(maxPagesPerPacket * RamBlock.PageSize));
        _runs = new (long, int)[maxPagesPerPacket];
    }

    /// <summary>The head buffer length a packet of up to maxPagesPerPacket pages needs (packet header, RAM header, offsets).</summary>
    public static int MaxHeadLength(int maxPagesPerPacket) => PacketHeader.Size + RamPacketHeader.Size + (maxPagesPerPacket * sizeof(ulong));

    /// <summary>The gathered normal pages of the last <see cref="RamPayload.Staging"/> packet.</summary>
    public byte[] Staging { get; }

    /// <summary>The compressed payload of the last <see cref="RamPayload.Compressed"/> packet (null without a codec).</summary>
    public byte[]? Compressed { get; }

    /// <summary>Contiguous run <paramref name="r"/> of the last <see cref="RamPayload.Direct"/> packet's normal pages.</summary>
    public (long First, int Count) Run(int r) => _runs[r];

    /// <summary>
    /// Classifies the pages, gathers or compresses the payload if needed, and writes the RAM header and the offsets
    /// into <paramref name="head"/> after its packet header's room; returns the plan with the checksum of the packet
    /// header still to be written.
    /// </summary>
    public RamPlan Prepare(RamBlock block, int blockIndex, long[] pages, int count, uint iteration, Span<byte> head)
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
        // A packet of zero pages only keeps the negotiated codec id (its payload is empty either way).
        var codec = normal == 0 && _codec is not null ? _codec.Id : CodecId.None;
        var raw = normal * RamBlock.PageSize;
        uint payloadLength = (uint)raw;
        if (_codec is not null && normal > 0 && (!_earlyAbort || CompressibilityProbe.LooksCompressible(block, _offsets.AsSpan(0, normal))))
        {
            Gather(block, runs, normal);
            var n = _codec.Compress(Staging.AsSpan(0, raw), Compressed);
            if (n < raw || !_earlyAbort)
            {
                payload = Compressed.AsSpan(0, n);
                payloadLength = (uint)n;
                kind = RamPayload.Compressed;
                codec = _codec.Id;
            }
            else
            {
                // The frame is no smaller than the pages: send the gathered pages as they are.
                payload = Staging.AsSpan(0, raw);
                kind = RamPayload.Staging;
            }
        }

        var rawUnderCodec = codec == CodecId.None && _codec is not null && normal > 0;

        // Not compressed (the branch above never leaves Direct) and too many runs to send straight: gather them.
        if (kind == RamPayload.Direct && runs > PageRuns.MaxDirect)
        {
            Gather(block, runs, normal);
            payload = Staging.AsSpan(0, raw);
            kind = RamPayload.Staging;
        }

        // Codec None in the header also under a negotiated codec: the receiver takes the payload as raw pages.
        var header = new RamPacketHeader((ushort)blockIndex, codec, iteration, (uint)normal, (uint)zero, payloadLength);
        var offsetBytes = head.Slice(PacketHeader.Size + RamPacketHeader.Size, count * sizeof(ulong));
        RamPageOffsets.Write(_offsets.AsSpan(0, count), offsetBytes);
        header.WriteTo(head[PacketHeader.Size..]);
        var checksum = _checksum.ComputeRam(header, offsetBytes, payload);
        var headLength = PacketHeader.Size + RamPacketHeader.Size + (count * sizeof(ulong));
        return new RamPlan(headLength, runs, kind, payloadLength, normal, zero, header.ExpectedBodyLength, checksum, rawUnderCodec);
    }

    private void Gather(RamBlock block, int runs, int normal)
    {
        var at = 0;
        for (var r = 0; r < runs; r++)
        {
            var bytes = _runs[r].Count * RamBlock.PageSize;
            block.Pages(_runs[r].First, _runs[r].Count).CopyTo(Staging.AsSpan(at, bytes));
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
        ArrayPool<ulong>.Shared.Return(_offsets);
        ArrayPool<ulong>.Shared.Return(_zeroOffsets);
        ArrayPool<byte>.Shared.Return(Staging);
        if (Compressed is not null)
        {
            ArrayPool<byte>.Shared.Return(Compressed);
        }
    }
}

/// <summary>Where a RAM packet's payload is.</summary>
internal enum RamPayload
{
    /// <summary>Straight from guest memory, in the encoder's runs (no copy).</summary>
    Direct,

    /// <summary>Gathered into the encoder's staging buffer.</summary>
    Staging,

    /// <summary>Compressed into the encoder's compression buffer.</summary>
    Compressed,
}

/// <summary>
/// A RAM packet encoded into the head buffer (all but the packet header, whose body length and checksum before any
/// fault injection are <paramref name="BodyLength"/> and <paramref name="Checksum"/>), with where its payload is;
/// <paramref name="RawUnderCodec"/> when its normal pages go raw although a codec was negotiated.
/// </summary>
internal readonly record struct RamPlan(int HeadLength, int Runs, RamPayload Payload, uint PayloadLength, int Normal, int Zero,
    uint BodyLength, uint Checksum, bool RawUnderCodec);
