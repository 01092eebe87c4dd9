using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Transport.Tests.Codecs;

/// <summary>The early-abort probe: which packets are handed to the codec and which go out raw.</summary>
public sealed class CompressibilityProbeTests
{
    private const int Pages = 512;
    private const int Seed = 17;

    [Fact]
    public void Random_pages_are_not_worth_compressing()
    {
        using var block = RamBlock.Create("r", Pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(block, RamFillPattern.Random, Seed);
        for (var first = 0; first < Pages; first += 128)
        {
            Assert.False(CompressibilityProbe.LooksCompressible(block, Offsets(Enumerable.Range(first, 128))), $"packet at page {first}");
        }

        // Small packets too: one random page alone, and three.
        Assert.False(CompressibilityProbe.LooksCompressible(block, Offsets([7])));
        Assert.False(CompressibilityProbe.LooksCompressible(block, Offsets([1, 2, 300])));
    }

    [Fact]
    public void Text_pages_and_repeated_bytes_are_worth_compressing()
    {
        using var block = RamBlock.Create("t", Pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(block, RamFillPattern.Mixed, Seed);
        var text = Enumerable.Range(0, Pages).Where(p => GuestRamFiller.KindOf(RamFillPattern.Mixed, Seed, p) == GuestRamFiller.PageKind.Text).ToArray();
        Assert.True(text.Length >= 64);
        Assert.True(CompressibilityProbe.LooksCompressible(block, Offsets(text.Take(64))));
        Assert.True(CompressibilityProbe.LooksCompressible(block, Offsets(text.Take(1))));

        block.Page(3).Fill(0x5A);
        Assert.True(CompressibilityProbe.LooksCompressible(block, Offsets([3])));
    }

    [Fact]
    public void A_packet_with_one_compressible_page_in_eight_is_compressed_and_one_in_thirty_two_is_not()
    {
        using var block = RamBlock.Create("m", Pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(block, RamFillPattern.Random, Seed);
        // 128 pages, probed every 4th page (32 probes): 4 probed pages with small integers are 1 in 8.
        foreach (var p in new[] { 0, 32, 64, 96 })
        {
            FillSmallIntegers(block.Page(p));
        }

        Assert.True(CompressibilityProbe.LooksCompressible(block, Offsets(Enumerable.Range(0, 128))));

        using var sparse = RamBlock.Create("s", Pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(sparse, RamFillPattern.Random, Seed + 1);
        FillSmallIntegers(sparse.Page(0));
        Assert.False(CompressibilityProbe.LooksCompressible(sparse, Offsets(Enumerable.Range(0, 128))));
    }

    [Fact]
    public void Distinct_byte_threshold_separates_random_from_structured_samples()
    {
        var rng = new Random(5);
        var sample = new byte[CompressibilityProbe.SampleBytes];
        var randomLike = 0;
        for (var i = 0; i < 10_000; i++)
        {
            rng.NextBytes(sample);
            randomLike += CompressibilityProbe.LooksRandom(sample) ? 1 : 0;
        }

        Assert.Equal(10_000, randomLike);
        var counter = Enumerable.Range(0, CompressibilityProbe.SampleBytes).Select(i => (byte)(i % 64)).ToArray();
        Assert.False(CompressibilityProbe.LooksRandom(counter));
        Assert.False(CompressibilityProbe.LooksRandom(new byte[CompressibilityProbe.SampleBytes]));
    }

    [Fact]
    public void No_pages_means_nothing_to_compress()
    {
        using var block = RamBlock.Create("e", 4 * (long)RamBlock.PageSize);
        Assert.False(CompressibilityProbe.LooksCompressible(block, ReadOnlySpan<ulong>.Empty));
    }

    private static ulong[] Offsets(IEnumerable<int> pages) => [.. pages.Select(p => (ulong)p << RamBlock.PageShift)];

    /// <summary>A page of little-endian 32-bit integers below 1000: the kind of data a guest keeps in tables.</summary>
    private static void FillSmallIntegers(Span<byte> page)
    {
        for (var i = 0; i < page.Length; i += 4)
        {
            BitConverter.TryWriteBytes(page[i..], (uint)((i * 37) % 1000));
        }
    }
}
