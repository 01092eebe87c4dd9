using System.Collections.Concurrent;
using Migration.Devices.Ram;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// Zero pages on memory known zero: the receiver asks its observer (IRamWriteObserver.MayHoldData) before it reads a
/// zero page, and announces pages with content (OnPagesArriving) before their bytes land.
/// </summary>
public sealed class KnownZeroPagesTests
{
    private const int BlockPages = 256;

    [Fact]
    public async Task A_zero_page_known_zero_is_left_alone_and_any_other_is_cleared()
    {
        using var source = RamBlock.Create("src", BlockPages * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", BlockPages * (long)RamBlock.PageSize);
        // Pages 3 and 4 hold garbage on the destination; the source sends both as zero pages. The observer calls 3
        // known zero (a lie, to show that the receiver does not touch such a page) and 4 possibly written.
        destination.Page(3).Fill(0xAB);
        destination.Page(4).Fill(0xCD);
        var observer = new Observer(destination, mayHoldData: [4]);
        await using var rig = await ReceiverRig.StartAsync(CodecId.None, [destination], new RecordingPacketSink(1 << 20), written: observer);
        await rig.SendAsync(async (writer, ct) =>
        {
            await writer.WriteRamAsync(source, 0, [3, 4], 2, 1, ct);
            await writer.WriteEndAsync(ct);
        });

        await rig.EndAsync();
        Assert.All(destination.Page(3).ToArray(), b => Assert.Equal(0xAB, b));
        Assert.All(destination.Page(4).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal([3L, 4L], observer.Asked.OrderBy(p => p));
    }

    [Theory]
    [InlineData(CodecId.None)]
    [InlineData(CodecId.Zstd)]
    public async Task Pages_with_content_are_announced_before_their_bytes_land_and_a_later_zero_page_clears_them(CodecId codec)
    {
        using var source = RamBlock.Create("src", BlockPages * (long)RamBlock.PageSize);
        using var destination = RamBlock.Create("dst", BlockPages * (long)RamBlock.PageSize); // fresh: all zero
        source.Page(10).Fill(0x11);
        source.Page(11).Fill(0x22);
        var observer = new Observer(destination, mayHoldData: []);
        await using var rig = await ReceiverRig.StartAsync(codec, [destination], new RecordingPacketSink(1 << 20), written: observer);
        await rig.SendAsync(async (writer, ct) =>
        {
            await writer.WriteRamAsync(source, 0, [10, 11], 2, 1, ct);
            await writer.WriteSyncAsync(1, ct);
            source.Page(10).Clear(); // the guest zeroed page 10: iteration 2 sends it as a zero page
            await writer.WriteRamAsync(source, 0, [10], 1, 2, ct);
            await writer.WriteEndAsync(ct);
        });

        await rig.EndAsync();
        // Announced while the destination still held zeros there, i.e. before the bytes were received.
        Assert.Equal([(10L, true), (11L, true)], observer.Announced.OrderBy(a => a.Page).ToArray());
        Assert.All(destination.Page(10).ToArray(), b => Assert.Equal(0, b));
        Assert.All(destination.Page(11).ToArray(), b => Assert.Equal(0x22, b));
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
    }

    /// <summary>Says "may hold data" for the pages given and for every page announced; records what was asked and announced.</summary>
    private sealed class Observer(RamBlock destination, long[] mayHoldData) : IRamWriteObserver
    {
        private readonly ConcurrentDictionary<long, bool> _holds = new(mayHoldData.Select(p => KeyValuePair.Create(p, true)));

        public ConcurrentBag<long> Asked { get; } = [];

        /// <summary>Each announced page, and whether the destination page was still all zero at the announcement.</summary>
        public ConcurrentBag<(long Page, bool StillZero)> Announced { get; } = [];

        public void OnPagesArriving(int blockIndex, ReadOnlySpan<ulong> normalPageOffsets)
        {
            foreach (var offset in normalPageOffsets)
            {
                var page = (long)(offset >> RamBlock.PageShift);
                Announced.Add((page, destination.Page(page).IndexOfAnyExcept((byte)0) < 0));
                _holds[page] = true;
            }
        }

        public void OnPagesWritten(int blockIndex, ReadOnlySpan<ulong> pageOffsets, int normalPages)
        {
        }

        public bool MayHoldData(int blockIndex, long page)
        {
            Asked.Add(page);
            return _holds.ContainsKey(page);
        }
    }
}
