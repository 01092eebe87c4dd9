using System.Buffers.Binary;
using Migration.Devices.Util;
using Xunit;

namespace Migration.Devices.Tests.Util;

/// <summary>
/// <see cref="SplitMix64.Fill"/> computes four words at a time with AVX2 where the CPU has it; the bytes it writes must
/// equal the scalar <see cref="SplitMix64.Word"/> stream (little-endian) at every offset and length, since source and
/// destination nodes may run on CPUs with and without AVX2 and the simulated devices verify every byte they load.
/// </summary>
public sealed class SplitMix64Tests
{
    [Fact]
    public void Words_of_key_zero_are_the_reference_splitmix64_outputs_of_seed_zero()
    {
        // Vigna's splitmix64.c seeded with 0: x += 0x9e3779b97f4a7c15, then the finalizer.
        Span<byte> bytes = stackalloc byte[24];
        SplitMix64.Fill(0, 0, bytes);
        Assert.Equal(0xE220A8397B1DCDAFUL, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(0x6E789E6AA1B965F4UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]));
        Assert.Equal(0x06C45D188009454FUL, BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]));
    }

    [Fact]
    public void Fill_equals_the_scalar_words_at_any_offset_and_length()
    {
        var random = new Random(7);
        for (var t = 0; t < 3000; t++)
        {
            var key = (ulong)random.NextInt64() ^ ((ulong)random.Next() << 40);
            long offset = random.Next(0, 100_000);
            var length = t % 10 == 0 ? random.Next(0, 16) : random.Next(0, 5000);
            var bytes = new byte[length];
            SplitMix64.Fill(key, offset, bytes);
            AssertScalar(key, offset, bytes);
        }
    }

    [Theory]
    [InlineData(0L, 1 << 20)]
    [InlineData(3L, (1 << 20) + 5)]
    [InlineData(4096L * 1000 + 7, 65536)]
    public void A_large_fill_at_an_aligned_or_odd_offset_equals_the_scalar_words(long offset, int length)
    {
        var bytes = new byte[length];
        SplitMix64.Fill(0x1234_5678_9ABC_DEF0UL, offset, bytes);
        AssertScalar(0x1234_5678_9ABC_DEF0UL, offset, bytes);
    }

    [Fact]
    public void Filling_in_pieces_gives_the_bytes_of_one_fill()
    {
        const ulong key = 42;
        var whole = new byte[200_000];
        SplitMix64.Fill(key, 1000, whole);
        var pieces = new byte[whole.Length];
        var random = new Random(3);
        for (var at = 0; at < pieces.Length;)
        {
            var n = Math.Min(pieces.Length - at, random.Next(1, 9000));
            SplitMix64.Fill(key, 1000 + at, pieces.AsSpan(at, n));
            at += n;
        }

        Assert.Equal(whole, pieces);
    }

    private static void AssertScalar(ulong key, long offset, byte[] bytes)
    {
        for (var j = 0; j < bytes.Length; j++)
        {
            var position = offset + j;
            var expected = (byte)(SplitMix64.Word(key, position >> 3) >> (int)(8 * (position & 7)));
            if (bytes[j] != expected)
            {
                Assert.Fail($"key {key:x16} offset {offset} length {bytes.Length}: byte {j} is {bytes[j]:x2}, the scalar stream has {expected:x2}");
            }
        }
    }
}
