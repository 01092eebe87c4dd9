using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>RAM pages through PacketWriter -> loopback TCP -> PacketReceiver, for every codec.</summary>
public sealed class RamRoundTripTests
{
    private const int BlockPages = 1024; // 4 MiB
    private const int Seed = 11;

    public static TheoryData<CodecId> Codecs() => [CodecId.None, CodecId.Zstd, CodecId.Lz4];

    [Theory]
    [MemberData(nameof(Codecs))]
    public async Task Whole_block_arrives_with_zero_pages_cleared_across_two_iterations(CodecId codec)
    {
        using var source = RamBlock.Create("src", BlockPages * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", BlockPages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Mixed, Seed);
        // Garbage in every destination page, including those that will receive zero pages: a zero page that is
        // not cleared by the receiver shows up in the digest.
        GuestRamFiller.Fill(destination, RamFillPattern.Random, 99);
        var kinds = Enumerable.Range(0, BlockPages).Select(p => GuestRamFiller.KindOf(RamFillPattern.Mixed, Seed, p)).ToArray();
        Assert.InRange(kinds.Count(k => k == GuestRamFiller.PageKind.Zero), 100, 500);

        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(codec, [destination], sink, channel: 1);
        long normal = 0, zero = 0, zeroInIteration2 = 0;
        await rig.SendAsync(async (writer, ct) =>
        {
            var pages = new long[ReceiverRig.MaxPages];
            for (var first = 0; first < BlockPages; first += ReceiverRig.MaxPages)
            {
                for (var i = 0; i < pages.Length; i++)
                {
                    pages[i] = first + i;
                }

                var r = await writer.WriteRamAsync(source, 0, pages, pages.Length, 1, ct);
                normal += r.NormalPages;
                zero += r.ZeroPages;
            }

            await writer.WriteSyncAsync(1, ct);

            // Iteration 2: the guest changed a few pages meanwhile: a zero page got data, a random page became
            // zero, a text page was rewritten.
            var wasZero = Array.IndexOf(kinds, GuestRamFiller.PageKind.Zero);
            var wasRandom = Array.IndexOf(kinds, GuestRamFiller.PageKind.Random);
            var wasText = Array.LastIndexOf(kinds, GuestRamFiller.PageKind.Text);
            source.Write(wasZero, 100, Enumerable.Repeat((byte)0x5A, 200).ToArray());
            source.Page(wasRandom).Clear();
            source.Write(wasText, 0, Enumerable.Range(0, RamBlock.PageSize).Select(i => (byte)(i * 7)).ToArray());
            long[] dirty = [wasZero, wasRandom, wasText];
            Array.Sort(dirty);
            var r2 = await writer.WriteRamAsync(source, 0, dirty, dirty.Length, 2, ct);
            normal += r2.NormalPages;
            zero += r2.ZeroPages;
            zeroInIteration2 = r2.ZeroPages;
            await writer.WriteEndAsync(ct);
        });

        var end = await rig.EndAsync();
        Assert.Equal(rig.Writer.PacketsSent, end.PacketsSent);
        Assert.Equal((ulong)(BlockPages / ReceiverRig.MaxPages) + 2, end.PacketsSent);
        Assert.Equal(1, zeroInIteration2);
        Assert.Equal(normal, rig.Receiver.NormalPages);
        Assert.Equal(zero, rig.Receiver.ZeroPages);
        Assert.Equal(BlockPages + 3, normal + zero);
        Assert.Equal(rig.Writer.WireBytes, rig.Receiver.WireBytes);
        Assert.Equal([1u], sink.Syncs);
        Assert.Empty(sink.Chunks);
        Assert.Empty(PageAssert.DifferingPages(source, destination));
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
    }

    public static TheoryData<CodecId, bool> ScatteredCases()
    {
        var data = new TheoryData<CodecId, bool>();
        foreach (var codec in new[] { CodecId.None, CodecId.Zstd, CodecId.Lz4 })
        {
            data.Add(codec, false);
            data.Add(codec, true);
        }

        return data;
    }

    /// <summary>
    /// Non-contiguous page lists: 4 runs of normal pages (the writer sends them straight from guest memory, one
    /// send per run, the receiver receives each run into place) or 30 runs (more than the writer's 8 direct runs:
    /// gathered into one buffer). Pages outside the list must keep their old content.
    /// </summary>
    [Theory]
    [MemberData(nameof(ScatteredCases))]
    public async Task Scattered_pages_land_at_their_offsets_and_nothing_else_changes(CodecId codec, bool manyRuns)
    {
        const int pages = 512;
        using var source = RamBlock.Create("src", pages * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Random, 5);
        GuestRamFiller.Fill(destination, RamFillPattern.Random, 6);
        source.Page(300).Clear();
        source.Page(301).Clear();
        var before = PageAssert.Snapshot(destination);

        List<long> list = manyRuns
            ? [.. Enumerable.Range(0, 30).Select(i => (long)i * 3)]
            : [10, 11, 12, 13, 40, 70, 71, 72, .. Enumerable.Range(200, 8).Select(i => (long)i)];
        list.AddRange([300, 301]);
        var runs = list.Where(p => p < 300).Count(p => !list.Contains(p - 1));
        Assert.Equal(manyRuns ? 30 : 4, runs);

        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(codec, [destination], sink);
        RamPacketResult result = default;
        await rig.SendAsync(async (writer, ct) =>
        {
            result = await writer.WriteRamAsync(source, 0, [.. list], list.Count, 1, ct);
            await writer.WriteEndAsync(ct);
        });

        var end = await rig.EndAsync();
        Assert.Equal(1UL, end.PacketsSent);
        Assert.Equal(list.Count - 2, result.NormalPages);
        Assert.Equal(2, result.ZeroPages);
        Assert.Equal(list.Count - 2, rig.Receiver.NormalPages);
        Assert.Equal(2, rig.Receiver.ZeroPages);
        var wrong = new List<long>();
        for (long p = 0; p < pages; p++)
        {
            var expected = list.Contains(p)
                ? source.Page(p)
                : before.AsSpan((int)(p * RamBlock.PageSize), RamBlock.PageSize);
            if (!destination.Page(p).SequenceEqual(expected))
            {
                wrong.Add(p);
            }
        }

        Assert.Empty(wrong);
    }

    /// <summary>
    /// Early abort: under a negotiated codec, a packet of random pages goes out raw (codec None, exactly the pages'
    /// bytes on the wire) and a packet of text pages compressed; both land exactly, and the receiver tells them apart
    /// by the packet's own codec field.
    /// </summary>
    [Theory]
    [InlineData(CodecId.Zstd)]
    [InlineData(CodecId.Lz4)]
    public async Task Incompressible_packet_goes_raw_and_compressible_one_compressed_under_a_codec(CodecId codec)
    {
        const int pages = 1024;
        using var source = RamBlock.Create("src", pages * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Mixed, Seed);
        GuestRamFiller.Fill(destination, RamFillPattern.Random, 3);
        var kinds = Enumerable.Range(0, pages).Select(p => GuestRamFiller.KindOf(RamFillPattern.Mixed, Seed, p)).ToArray();
        long[] random = [.. Enumerable.Range(0, pages).Where(p => kinds[p] == GuestRamFiller.PageKind.Random).Take(ReceiverRig.MaxPages).Select(p => (long)p)];
        long[] text = [.. Enumerable.Range(0, pages).Where(p => kinds[p] == GuestRamFiller.PageKind.Text).Take(64).Select(p => (long)p)];
        Assert.Equal(ReceiverRig.MaxPages, random.Length);
        Assert.Equal(64, text.Length);

        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(codec, [destination], sink);
        RamPacketResult rawResult = default, compressedResult = default;
        long rawCountAfterFirst = -1;
        await rig.SendAsync(async (writer, ct) =>
        {
            rawResult = await writer.WriteRamAsync(source, 0, random, random.Length, 1, ct);
            rawCountAfterFirst = writer.RawRamPacketsUnderCodec;
            compressedResult = await writer.WriteRamAsync(source, 0, text, text.Length, 1, ct);
            await writer.WriteEndAsync(ct);
        });

        await rig.EndAsync();
        var head = RamPacketEncoder.MaxHeadLength(0);
        Assert.Equal(1, rawCountAfterFirst);
        Assert.Equal(head + (random.Length * 8L) + (random.Length * (long)RamBlock.PageSize), rawResult.WireBytes);
        Assert.Equal(1, rig.Writer.RawRamPacketsUnderCodec);
        Assert.InRange(compressedResult.WireBytes, 1, text.Length * (long)RamBlock.PageSize / 2);
        Assert.Equal(random.Length + text.Length, rig.Receiver.NormalPages);
        foreach (var p in random.Concat(text))
        {
            Assert.True(destination.Page(p).SequenceEqual(source.Page(p)), $"page {p} differs");
        }
    }

    /// <summary>The probe, not the codec, decides for random pages: the codec never sees them; text pages it does.</summary>
    [Fact]
    public async Task The_probe_keeps_random_pages_away_from_the_codec()
    {
        using var source = RamBlock.Create("src", 1024 * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Mixed, Seed);
        var kinds = Enumerable.Range(0, 1024).Select(p => GuestRamFiller.KindOf(RamFillPattern.Mixed, Seed, p)).ToArray();
        long[] random = [.. Enumerable.Range(0, 1024).Where(p => kinds[p] == GuestRamFiller.PageKind.Random).Take(64).Select(p => (long)p)];
        long[] text = [.. Enumerable.Range(0, 1024).Where(p => kinds[p] == GuestRamFiller.PageKind.Text).Take(64).Select(p => (long)p)];
        using var codec = new CountingCodec(new ZstdCodec());
        var calls = new List<int>();
        await LoopbackSocketPair.CaptureAsync(async (w, ct) =>
        {
            await w.WriteRamAsync(source, 0, random, random.Length, 1, ct);
            calls.Add(codec.Compressions);
            await w.WriteRamAsync(source, 0, text, text.Length, 1, ct);
            calls.Add(codec.Compressions);
        }, codec: codec);

        Assert.Equal([0, 1], calls);
    }

    /// <summary>
    /// The fallback: pages the probe lets through (random bytes from 64 values: few distinct bytes) that lz4 cannot
    /// shrink (no repeats, and lz4 has no entropy stage) go out raw, exactly their bytes, and land intact.
    /// </summary>
    [Fact]
    public async Task A_frame_no_smaller_than_the_pages_goes_out_raw()
    {
        using var source = RamBlock.Create("src", 16 * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", 16 * (long)RamBlock.PageSize);
        var rng = new Random(21);
        var page = source.Page(3);
        for (var i = 0; i < page.Length; i++)
        {
            page[i] = (byte)rng.Next(64);
        }

        Assert.True(CompressibilityProbe.LooksCompressible(source, [3UL << RamBlock.PageShift]));
        var sink = new RecordingPacketSink(1 << 20);
        await using var rig = await ReceiverRig.StartAsync(CodecId.Lz4, [destination], sink);
        RamPacketResult result = default;
        await rig.SendAsync(async (writer, ct) =>
        {
            result = await writer.WriteRamAsync(source, 0, [3], 1, 1, ct);
            await writer.WriteEndAsync(ct);
        });

        await rig.EndAsync();
        Assert.Equal(1, rig.Writer.RawRamPacketsUnderCodec);
        Assert.Equal(1, result.UncompressedPages);
        Assert.Equal(RamPacketEncoder.MaxHeadLength(1) + RamBlock.PageSize, result.WireBytes);
        Assert.True(destination.Page(3).SequenceEqual(source.Page(3)));
    }

    /// <summary>A receiver that did not announce raw packets under a codec (earlyAbort off) gets every packet compressed.</summary>
    [Fact]
    public async Task Without_early_abort_random_pages_are_compressed_as_before()
    {
        using var source = RamBlock.Create("src", 256 * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Random, 4);
        long[] pages = [.. Enumerable.Range(0, 128).Select(i => (long)i)];
        using var codec = new ZstdCodec();
        var packet = await LoopbackSocketPair.CaptureAsync(
            (w, ct) => w.WriteRamAsync(source, 0, pages, pages.Length, 1, ct).AsTask(), codec: codec, earlyAbort: false);
        Assert.Equal((byte)CodecId.Zstd, packet[Migration.Transport.Wire.PacketHeader.Size + 2]);
    }

    [Fact]
    public async Task Receiver_stops_at_the_sync_barrier_until_it_is_released()
    {
        const int pages = 256;
        using var source = RamBlock.Create("src", pages * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(source, RamFillPattern.Random, 8);
        var sink = new RecordingPacketSink(1 << 20) { HoldSyncs = true };
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [destination], sink);
        long[] first = [.. Enumerable.Range(0, 128).Select(i => (long)i)];
        long[] second = [.. Enumerable.Range(128, 128).Select(i => (long)i)];
        await rig.SendAsync(async (writer, ct) =>
        {
            await writer.WriteRamAsync(source, 0, first, first.Length, 1, ct);
            await writer.WriteSyncAsync(1, ct);
            await writer.WriteRamAsync(source, 0, second, second.Length, 2, ct);
            await writer.WriteEndAsync(ct);
        });

        await sink.FirstSync.WaitAsync(LoopbackSocketPair.Timeout);
        // Everything was sent; the loop is parked in OnSyncAsync, so iteration 2 stays in the socket.
        await Task.Delay(100);
        Assert.False(rig.Loop.IsCompleted);
        Assert.Equal(128, rig.Receiver.NormalPages);
        Assert.True(destination.Page(200).SequenceEqual(new byte[RamBlock.PageSize]));

        sink.ReleaseSyncs();
        var end = await rig.EndAsync();
        Assert.Equal(3UL, end.PacketsSent);
        Assert.Equal(256, rig.Receiver.NormalPages);
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
    }
}

/// <summary>Wraps a codec and counts its Compress calls (one thread).</summary>
internal sealed class CountingCodec(IRamCodec inner) : IRamCodec
{
    public int Compressions { get; private set; }

    public CodecId Id => inner.Id;

    public int MaxCompressedLength(int inputLength) => inner.MaxCompressedLength(inputLength);

    public int Compress(ReadOnlySpan<byte> pages, Span<byte> destination)
    {
        Compressions++;
        return inner.Compress(pages, destination);
    }

    public void Decompress(ReadOnlySpan<byte> compressed, Span<byte> destination) => inner.Decompress(compressed, destination);

    public void Dispose() => inner.Dispose();
}
