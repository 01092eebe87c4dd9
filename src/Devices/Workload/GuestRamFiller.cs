using Migration.Devices.Ram;
using Migration.Devices.Util;

namespace Migration.Devices.Workload;

/// <summary>Initial guest RAM content, chosen for compression and zero-page tests.</summary>
public enum RamFillPattern
{
    /// <summary>Every page all zero.</summary>
    Zero = 1,
    /// <summary>Every page random (incompressible) except byte 0.</summary>
    Random = 2,
    /// <summary>90% of pages all zero, the rest random; which pages is a pure function of (seed, page).</summary>
    Zero90 = 3,
    /// <summary>25% zero pages, 25% text-like (compressible), 50% random.</summary>
    Mixed = 4,
}

/// <summary>
/// Fills a RAM block with deterministic content: same (pattern, seed, block size) gives the same bytes.
/// Byte 0 of every page is set to 0 so the <see cref="GuestWorkload"/> pattern (which owns byte 0) holds.
/// Does not mark pages dirty: this is content from before migration starts. Runs on the calling thread plus
/// one helper for large blocks; nothing else may write the block meanwhile.
/// </summary>
public static class GuestRamFiller
{
    private const int ParallelThresholdPages = 16384; // 64 MiB

    private static readonly byte[][] Words = new[]
    {
        "the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog ", "lorem ", "ipsum ",
        "migration ", "page ", "dirty ", "guest ", "kernel ", "memory ", "\n", "0x00000000 ", "int ", "return ",
    }.Select(System.Text.Encoding.ASCII.GetBytes).ToArray();

    public static void Fill(RamBlock block, RamFillPattern pattern, int seed)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (!Enum.IsDefined(pattern))
            throw new ArgumentOutOfRangeException(nameof(pattern), pattern, "unknown RAM fill pattern");
        int pages = block.PageCount;
        if (pages < ParallelThresholdPages)
        {
            FillRange(block, pattern, seed, 0, pages);
            return;
        }
        int half = pages / 2;
        var other = Task.Factory.StartNew(() => FillRange(block, pattern, seed, half, pages), TaskCreationOptions.LongRunning);
        try
        {
            FillRange(block, pattern, seed, 0, half);
        }
        finally
        {
            other.GetAwaiter().GetResult();
        }
    }

    /// <summary>What kind of content page <paramref name="page"/> gets (pure function, for tests and stats).</summary>
    public static PageKind KindOf(RamFillPattern pattern, int seed, long page)
    {
        int roll = (int)(SplitMix64.Word(SplitMix64.Key((ulong)seed, 0x6B696E64), page) % 100);
        return pattern switch
        {
            RamFillPattern.Zero => PageKind.Zero,
            RamFillPattern.Random => PageKind.Random,
            RamFillPattern.Zero90 => roll < 90 ? PageKind.Zero : PageKind.Random,
            RamFillPattern.Mixed => roll < 25 ? PageKind.Zero : roll < 50 ? PageKind.Text : PageKind.Random,
            _ => throw new ArgumentOutOfRangeException(nameof(pattern), pattern, "unknown RAM fill pattern"),
        };
    }

    /// <summary>Content class of one filled page.</summary>
    public enum PageKind { Zero, Text, Random }

    private static void FillRange(RamBlock block, RamFillPattern pattern, int seed, int firstPage, int endPage)
    {
        ulong randomKey = SplitMix64.Key((ulong)seed, 0x72616E64);
        const int batch = 256; // 1 MiB at a time for the all-random pattern
        for (int page = firstPage; page < endPage;)
        {
            if (pattern == RamFillPattern.Random)
            {
                int n = Math.Min(batch, endPage - page);
                Span<byte> span = block.Pages(page, n);
                SplitMix64.Fill(randomKey, (long)page << RamBlock.PageShift, span);
                for (int i = 0; i < n; i++)
                    span[i << RamBlock.PageShift] = 0;
                page += n;
                continue;
            }
            Span<byte> p = block.Page(page);
            switch (KindOf(pattern, seed, page))
            {
                case PageKind.Zero:
                    if (p.ContainsAnyExcept((byte)0)) // reading a never-touched page does not allocate it
                        p.Clear();
                    break;
                case PageKind.Text:
                    FillText(p, SplitMix64.Key((ulong)seed, 0x74657874, (ulong)page));
                    break;
                default:
                    SplitMix64.Fill(randomKey, (long)page << RamBlock.PageShift, p);
                    break;
            }
            p[0] = 0;
            page++;
        }
    }

    private static void FillText(Span<byte> page, ulong key)
    {
        var rng = new Xoshiro256StarStar(key);
        int at = 0;
        while (at < page.Length)
        {
            byte[] word = Words[rng.NextBelow((ulong)Words.Length)];
            int n = Math.Min(word.Length, page.Length - at);
            word.AsSpan(0, n).CopyTo(page[at..]);
            at += n;
        }
    }
}
