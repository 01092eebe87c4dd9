using System.Numerics;
using Migration.Devices.Ram;

namespace Migration.Transport.Codecs;

/// <summary>
/// Early abort for RAM compression, in the spirit of ZFS's LZ4 early abort and btrfs's compression heuristic: decides,
/// from a small sample, whether a packet's normal pages are worth handing to the codec at all. Random, encrypted or
/// already-compressed pages cost a full compression pass and come out no smaller, so a packet that looks like that
/// goes out uncompressed (codec None in its RAM header, docs/protocol.md "RAM packet body").
/// <para>
/// The test: up to <see cref="MaxProbedPages"/> pages spread evenly over the packet are probed; for each, one
/// <see cref="SampleBytes"/>-byte sample at a page-dependent offset is read and its distinct byte values counted.
/// Uniformly random bytes give about 101 distinct values in 128 (standard deviation about 4); text, code, pointers and
/// small integers give far fewer. A page with fewer than <see cref="RandomLikeDistinct"/> distinct values counts as
/// compressible, and the packet is compressed when at least one in <see cref="CompressibleShare"/> of the probed pages is
/// (so a packet whose pages are mostly random but partly text, which still saves something, is compressed).
/// </para>
/// <para>
/// What it can miss: data of high byte diversity whose redundancy is only in long repeats (a random block copied within
/// the packet). Such a packet goes out raw: a lost ratio, never a wrong byte, since the receiver handles both forms.
/// The opposite mistake costs only the compression pass, and the encoder then still sends raw when the frame is no
/// smaller than the pages.
/// </para>
/// Cost: at most 32 samples of 128 bytes per packet, no allocation; stateless and thread-safe.
/// </summary>
public static class CompressibilityProbe
{
    /// <summary>Bytes read from each probed page.</summary>
    public const int SampleBytes = 128;

    /// <summary>At most this many pages of a packet are probed.</summary>
    public const int MaxProbedPages = 32;

    /// <summary>A sample with at least this many distinct byte values looks random (random: ~101 ± 4 of 128).</summary>
    public const int RandomLikeDistinct = 80;

    /// <summary>The packet is compressed when at least 1 in this many probed pages looks compressible.</summary>
    public const int CompressibleShare = 8;

    /// <summary>
    /// True when the normal pages at <paramref name="byteOffsets"/> (byte offsets within <paramref name="block"/>) look
    /// worth compressing. Reads guest memory without copying; the guest may change it meanwhile, which can only change
    /// the decision, never what is sent.
    /// </summary>
    public static bool LooksCompressible(RamBlock block, ReadOnlySpan<ulong> byteOffsets)
    {
        var pages = byteOffsets.Length;
        if (pages == 0)
        {
            return false;
        }

        var probed = Math.Min(pages, MaxProbedPages);
        var needed = Math.Max(1, probed / CompressibleShare);
        var found = 0;
        for (var i = 0; i < probed; i++)
        {
            // Evenly spread over the packet: probe i covers page i * pages / probed.
            var pageIndex = (long)(byteOffsets[(int)((long)i * pages / probed)] >> RamBlock.PageShift);
            if (!LooksRandom(SampleOf(block.Page(pageIndex), pageIndex)))
            {
                found++;
                if (found >= needed)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>True when <paramref name="sample"/> has at least <see cref="RandomLikeDistinct"/> distinct byte values.</summary>
    public static bool LooksRandom(ReadOnlySpan<byte> sample)
    {
        // One bit per byte value (4 x 64 bits on the stack).
        ulong b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        foreach (var v in sample)
        {
            var bit = 1UL << (v & 63);
            switch (v >> 6)
            {
                case 0: b0 |= bit; break;
                case 1: b1 |= bit; break;
                case 2: b2 |= bit; break;
                default: b3 |= bit; break;
            }
        }

        var distinct = BitOperations.PopCount(b0) + BitOperations.PopCount(b1) + BitOperations.PopCount(b2) + BitOperations.PopCount(b3);
        return distinct >= RandomLikeDistinct;
    }

    /// <summary>The sample of one page: <see cref="SampleBytes"/> bytes at one of 32 aligned positions chosen by the page index.</summary>
    private static ReadOnlySpan<byte> SampleOf(ReadOnlySpan<byte> page, long pageIndex)
    {
        var slot = (int)((ulong)pageIndex * 0x9E3779B97F4A7C15UL >> 59); // 0..31, a Fibonacci hash of the page index
        return page.Slice(slot * SampleBytes, SampleBytes);
    }
}
