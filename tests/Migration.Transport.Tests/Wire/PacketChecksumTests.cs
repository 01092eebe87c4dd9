using System.IO.Hashing;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Wire;

public class PacketChecksumTests
{
    private static byte[] Sample(int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + 7);
        }

        return bytes;
    }

    [Fact]
    public void Is_low_32_bits_of_xxhash3_and_stable()
    {
        byte[] data = Sample(1000);
        uint expected = (uint)XxHash3.HashToUInt64(data);
        Assert.Equal(expected, PacketChecksum.Compute(data));
        Assert.Equal(expected, PacketChecksum.Compute(data));
        Assert.Equal(0x38D394C2u, PacketChecksum.Compute(ReadOnlySpan<byte>.Empty)); // XXH3_64bits("") = 0x2D06800538D394C2
    }

    [Fact]
    public void Incremental_equals_one_shot_and_finish_resets()
    {
        byte[] data = Sample(5000);
        var checksum = new PacketChecksum();
        checksum.Append(data.AsSpan(0, 24));
        checksum.Append(data.AsSpan(24, 1000));
        checksum.Append(data.AsSpan(1024));
        Assert.Equal(PacketChecksum.Compute(data), checksum.Finish());

        checksum.Append(data);
        Assert.Equal(PacketChecksum.Compute(data), checksum.Finish());

        checksum.Append(Sample(10));
        checksum.Reset();
        checksum.Append(data);
        Assert.Equal(PacketChecksum.Compute(data), checksum.Finish());
    }

    [Fact]
    public void Flipping_any_checked_byte_changes_the_checksum()
    {
        byte[] data = Sample(64);
        uint original = PacketChecksum.Compute(data);
        for (int i = 0; i < data.Length; i++)
        {
            data[i] ^= 0x01;
            Assert.NotEqual(original, PacketChecksum.Compute(data));
            data[i] ^= 0x01;
        }
    }

    [Fact]
    public void Ram_checksum_skips_raw_pages_but_covers_compressed_payload()
    {
        var checksum = new PacketChecksum();
        byte[] offsets = new byte[16];
        RamPageOffsets.Write([0x1000, 0x2000], offsets);
        byte[] pages = Sample(2 * 4096);

        var plain = new RamPacketHeader(0, CodecId.None, 1, 2, 0, 2 * 4096);
        uint before = checksum.ComputeRam(plain, offsets, pages);
        pages[100] ^= 0xFF; // guest wrote during the send: not a transport error
        Assert.Equal(before, checksum.ComputeRam(plain, offsets, pages));
        offsets[9] ^= 0x01;
        Assert.NotEqual(before, checksum.ComputeRam(plain, offsets, pages));

        byte[] compressed = Sample(300);
        var zstd = new RamPacketHeader(0, CodecId.Zstd, 1, 2, 0, 300);
        uint packed = checksum.ComputeRam(zstd, offsets, compressed);
        compressed[299] ^= 0x01;
        Assert.NotEqual(packed, checksum.ComputeRam(zstd, offsets, compressed));
    }

    [Fact]
    public void Device_checksum_covers_header_and_payload()
    {
        var checksum = new PacketChecksum();
        byte[] payload = Sample(100);
        var header = new DeviceChunkHeader(0, DevicePhase.Precopy, DeviceChunkFlags.None, 1, 0, 100);
        uint original = checksum.ComputeDevice(header, payload);
        Assert.Equal(original, checksum.ComputeDevice(header, payload));
        Assert.NotEqual(original, checksum.ComputeDevice(header with { ChunkIndex = 1 }, payload));
        payload[0] ^= 0x80;
        Assert.NotEqual(original, checksum.ComputeDevice(header, payload));
    }
}
