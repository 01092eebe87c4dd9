using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class RamPageOffsetsTests
{
    private static RamPacketHeader Header(ushort block, int normal, int zero) =>
        new(block, CodecId.None, 1, (uint)normal, (uint)zero, (uint)normal * 4096);

    private static bool Read(ulong[] offsets, int normal, out string error, ushort block = 0, int channel = 0)
    {
        var header = Header(block, normal, offsets.Length - normal);
        var bytes = new byte[offsets.Length * 8];
        RamPageOffsets.Write(offsets, bytes);
        var decoded = new ulong[offsets.Length];
        bool ok = RamPageOffsets.TryRead(bytes, header, Context(channel), decoded, out error);
        if (ok)
        {
            Assert.Equal(offsets, decoded);
        }

        return ok;
    }

    [Fact]
    public void Golden_bytes_both_directions()
    {
        ulong[] offsets = [0x1000, 0x3000, 0x2000];
        const string golden = "0010000000000000 0030000000000000 0020000000000000";
        var bytes = new byte[24];
        RamPageOffsets.Write(offsets, bytes);
        Assert.Equal(Hex(golden), bytes);

        var decoded = new ulong[3];
        Assert.True(RamPageOffsets.TryRead(Hex(golden), Header(0, 2, 1), Context(0), decoded, out var error), error);
        Assert.Equal(offsets, decoded);
    }

    [Fact]
    public void Round_trip_accepts_ascending_lists_up_to_last_page()
    {
        Assert.True(Read([0, 0x5000, 0xF000, 0x1000, 0x2000], 3, out var error, block: 1), error);
    }

    [Fact]
    public void Offset_beyond_block_is_rejected()
    {
        Assert.False(Read([0x1000, 0x40000000], 2, out var error));
        Assert.Equal("channel 0: page offset 0x40000000 beyond block 0 of 262144 pages", error);
        Assert.False(Read([0x10000], 0, out error, block: 1, channel: 3));
        Assert.Equal("channel 3: page offset 0x10000 beyond block 1 of 16 pages", error);
        Assert.False(Read([ulong.MaxValue & ~0xFFFUL], 1, out error));
        Assert.Contains("beyond block 0 of 262144 pages", error);
    }

    [Fact]
    public void Unaligned_offset_is_rejected()
    {
        Assert.False(Read([0x1000, 0x2001], 2, out var error, channel: 5));
        Assert.Equal("channel 5: normal page offset 0x2001 (entry 1) not aligned to page size 4096", error);
    }

    [Fact]
    public void Duplicate_offset_is_rejected()
    {
        Assert.False(Read([0x1000, 0x1000], 2, out var error, channel: 1));
        Assert.Equal("channel 1: normal page offset 0x1000 (entry 1) not above previous 0x1000: offsets must be strictly ascending without duplicates", error);
    }

    [Fact]
    public void Descending_zero_list_is_rejected()
    {
        Assert.False(Read([0x1000, 0x5000, 0x4000], 1, out var error, channel: 2));
        Assert.Equal("channel 2: zero page offset 0x4000 (entry 2) not above previous 0x5000: offsets must be strictly ascending without duplicates", error);
    }

    [Fact]
    public void Page_in_both_lists_is_rejected()
    {
        Assert.False(Read([0x1000, 0x3000, 0x2000, 0x3000], 2, out var error, channel: 2));
        Assert.Equal("channel 2: page offset 0x3000 listed as both normal and zero page", error);
    }

    [Fact]
    public void Truncated_offset_array_is_rejected()
    {
        var decoded = new ulong[4];
        Assert.False(RamPageOffsets.TryRead(new byte[31], Header(0, 4, 0), Context(6), decoded, out var error));
        Assert.Equal("channel 6: truncated RAM page-offset array: 31 bytes, expected 32", error);
    }

    [Fact]
    public void Unknown_block_is_rejected()
    {
        Assert.False(RamPageOffsets.Validate([0UL], Header(9, 1, 0), Context(0), out var error));
        Assert.Equal("channel 0: unknown RAM block index 9 (migration has 2 blocks)", error);
    }
}
