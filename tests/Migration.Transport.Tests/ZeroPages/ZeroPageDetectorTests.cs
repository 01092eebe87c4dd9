using Migration.Transport.ZeroPages;
using Xunit;

namespace Migration.Transport.Tests.ZeroPages;

public sealed class ZeroPageDetectorTests
{
    private const int PageSize = ZeroPageDetector.PageSize;
    private static readonly byte[] Values = [0x01, 0x80, 0x7F, 0xFF];

    /// <summary>Public entry plus every vector-width path the hardware supports (64 = word fallback).</summary>
    private static IEnumerable<(string Name, Func<byte[], int, int, bool> Check)> Paths()
    {
        yield return ("IsAllZero", (a, o, n) => ZeroPageDetector.IsAllZero(a.AsSpan(o, n)));
        foreach (var bits in new[] { 512, 256, 128, 64 })
        {
            if (ZeroPageDetector.IsAllZeroUsingWidth([], bits) is null) continue;
            yield return ($"width {bits}", (a, o, n) => ZeroPageDetector.IsAllZeroUsingWidth(a.AsSpan(o, n), bits)!.Value);
        }
    }

    private static bool Reference(ReadOnlySpan<byte> data)
    {
        foreach (var b in data) if (b != 0) return false;
        return true;
    }

    [Fact]
    public void Page_with_one_nonzero_byte_at_every_position_must_not_be_zero()
    {
        var page = new byte[PageSize];
        for (var pos = 0; pos < PageSize; pos++)
        {
            foreach (var value in Values)
            {
                page[pos] = value;
                Assert.False(ZeroPageDetector.IsZeroPage(page), $"byte 0x{value:X2} at {pos}");
                Assert.False(ZeroPageDetector.IsZeroPageScalar(page), $"scalar: byte 0x{value:X2} at {pos}");
                foreach (var (name, check) in Paths())
                    Assert.False(check(page, 0, PageSize), $"{name}: byte 0x{value:X2} at {pos}");
            }
            page[pos] = 0;
        }
    }

    [Fact]
    public void All_zero_page_must_be_zero_and_all_FF_must_not()
    {
        var zero = new byte[PageSize];
        var ff = Enumerable.Repeat((byte)0xFF, PageSize).ToArray();
        Assert.True(ZeroPageDetector.IsZeroPage(zero));
        Assert.True(ZeroPageDetector.IsZeroPageScalar(zero));
        Assert.False(ZeroPageDetector.IsZeroPage(ff));
        Assert.False(ZeroPageDetector.IsZeroPageScalar(ff));
        foreach (var (name, check) in Paths())
        {
            Assert.True(check(zero, 0, PageSize), name);
            Assert.False(check(ff, 0, PageSize), name);
        }
    }

    [Fact]
    public void Vectorized_must_agree_with_scalar_on_random_pages()
    {
        var rng = new Random(1234);
        var buffer = new byte[PageSize + 64];
        for (var i = 0; i < 5000; i++)
        {
            Array.Clear(buffer);
            var offset = rng.Next(0, 64); // unaligned starts too
            var page = buffer.AsSpan(offset, PageSize);
            switch (i % 4)
            {
                case 0: rng.NextBytes(page); break;                         // dense
                case 1: page[rng.Next(PageSize)] = (byte)rng.Next(1, 256); break; // one byte
                case 2: for (var k = rng.Next(0, 4); k > 0; k--) page[rng.Next(PageSize)] = (byte)rng.Next(256); break; // sparse, maybe zero
                default: break;                                            // zero
            }
            var expected = ZeroPageDetector.IsZeroPageScalar(page);
            Assert.Equal(expected, ZeroPageDetector.IsZeroPage(page));
            foreach (var (name, check) in Paths())
                Assert.Equal(expected, check(buffer, offset, PageSize));
        }
    }

    [Fact]
    public void IsAllZero_on_lengths_0_to_300_must_find_one_byte_anywhere()
    {
        var buffer = new byte[300 + 3];
        for (var length = 0; length <= 300; length++)
        {
            foreach (var offset in new[] { 0, 3 })
            {
                foreach (var (name, check) in Paths())
                    Assert.True(check(buffer, offset, length), $"{name}: zero length {length}");
                for (var pos = 0; pos < length; pos++)
                {
                    foreach (var value in Values)
                    {
                        buffer[offset + pos] = value;
                        foreach (var (name, check) in Paths())
                            Assert.False(check(buffer, offset, length), $"{name}: length {length}, offset {offset}, 0x{value:X2} at {pos}");
                        buffer[offset + pos] = 0;
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(511)]
    [InlineData(1023)]
    [InlineData(4095)]
    [InlineData(4097)]
    [InlineData(8191)]
    [InlineData(12345)]
    public void IsAllZero_on_odd_lengths_must_find_one_byte_anywhere(int length)
    {
        var buffer = new byte[length];
        var paths = Paths().ToArray();
        foreach (var (name, check) in paths) Assert.True(check(buffer, 0, length), name);
        for (var pos = 0; pos < length; pos++)
        {
            buffer[pos] = (byte)(pos % 2 == 0 ? 0x80 : 0x01);
            foreach (var (name, check) in paths)
                Assert.False(check(buffer, 0, length), $"{name}: length {length}, byte at {pos}");
            buffer[pos] = 0;
        }
    }

    [Fact]
    public void IsAllZero_must_agree_with_reference_on_random_sparse_inputs()
    {
        var rng = new Random(99);
        var paths = Paths().ToArray();
        for (var i = 0; i < 3000; i++)
        {
            var data = new byte[rng.Next(0, 3000)];
            if (data.Length > 0 && rng.Next(2) == 0) data[rng.Next(data.Length)] = (byte)rng.Next(256);
            var expected = Reference(data);
            foreach (var (name, check) in paths)
                Assert.Equal(expected, check(data, 0, data.Length));
        }
    }

    [Fact]
    public void ClassifyPages_must_flag_each_page_and_count_zeros()
    {
        const int count = 128;
        var pages = new byte[count * PageSize];
        var rng = new Random(5);
        var expectedZero = new bool[count];
        for (var p = 0; p < count; p++)
        {
            expectedZero[p] = rng.Next(3) == 0;
            if (!expectedZero[p]) pages[p * PageSize + rng.Next(PageSize)] = 0x80;
        }
        var flags = new bool[count];
        var zeros = ZeroPageDetector.ClassifyPages(pages, count, flags);
        Assert.Equal(expectedZero, flags);
        Assert.Equal(expectedZero.Count(z => z), zeros);
    }

    [Fact]
    public void Arguments_of_the_wrong_size_must_be_rejected()
    {
        Assert.Throws<ArgumentException>(() => ZeroPageDetector.IsZeroPage(new byte[4095]));
        Assert.Throws<ArgumentException>(() => ZeroPageDetector.IsZeroPageScalar(new byte[8192]));
        Assert.Throws<ArgumentException>(() => ZeroPageDetector.ClassifyPages(new byte[PageSize], 2, new bool[2]));
        Assert.Throws<ArgumentException>(() => ZeroPageDetector.ClassifyPages(new byte[2 * PageSize], 2, new bool[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ZeroPageDetector.ClassifyPages(new byte[PageSize], -1, new bool[1]));
    }
}
