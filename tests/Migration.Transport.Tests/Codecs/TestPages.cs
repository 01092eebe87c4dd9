using System.Text;

namespace Migration.Transport.Tests.Codecs;

/// <summary>Deterministic page contents for codec tests and benchmarks-like inputs.</summary>
public static class TestPages
{
    public const int PageSize = 4096;

    public enum Kind { Random, Zero, Mixed }

    public static byte[] Make(Kind kind, int pageCount, int seed = 42)
    {
        var data = new byte[pageCount * PageSize];
        var rng = new Random(seed);
        for (var p = 0; p < pageCount; p++)
        {
            var page = data.AsSpan(p * PageSize, PageSize);
            switch (kind)
            {
                case Kind.Random: rng.NextBytes(page); break;
                case Kind.Zero: break;
                case Kind.Mixed:
                    switch (p % 3)
                    {
                        case 0: FillText(page, rng); break;
                        case 1: rng.NextBytes(page); break;
                        default: break; // zero page
                    }
                    break;
            }
        }
        return data;
    }

    private static readonly string[] Words =
        ["migration", "page", "dirty", "bitmap", "channel", "device", "state", "the", "of", "and", "kernel", "0x0000", "\n"];

    /// <summary>Compressible, text-like content: words from a small vocabulary.</summary>
    public static void FillText(Span<byte> page, Random rng)
    {
        var i = 0;
        while (i < page.Length)
        {
            var word = Encoding.ASCII.GetBytes(Words[rng.Next(Words.Length)] + " ");
            var n = Math.Min(word.Length, page.Length - i);
            word.AsSpan(0, n).CopyTo(page[i..]);
            i += n;
        }
    }
}
