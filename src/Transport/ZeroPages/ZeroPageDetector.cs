using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Migration.Devices.Ram;

namespace Migration.Transport.ZeroPages;

/// <summary>
/// Zero-page detection for the sender threads (QEMU's zero-page-detection=multifd, buffer_is_zero).
/// Pure functions over spans: thread-safe, allocation-free.
///
/// Strategy: most non-zero pages have a non-zero byte near the start, so the first 64 bytes are tested
/// alone; then the page is read in blocks of four vectors OR-reduced together, with one test per block
/// (early exit on the first non-zero block). The widest hardware-accelerated vector is used
/// (Vector512 on AVX-512 machines, else Vector256, else Vector128, else 64-bit words); tails are covered
/// by one overlapping load that ends exactly at the last byte.
/// </summary>
public static class ZeroPageDetector
{
    public const int PageSize = RamBlock.PageSize;

    /// <summary>True if the 4096-byte <paramref name="page"/> is all zero. Throws if the length is not 4096.</summary>
    public static bool IsZeroPage(ReadOnlySpan<byte> page)
    {
        if (page.Length != PageSize)
            throw new ArgumentException($"a page is {PageSize} bytes, got {page.Length}", nameof(page));
        return IsZeroPageCore(ref MemoryMarshal.GetReference(page));
    }

    /// <summary>Reference implementation: a plain byte loop. For tests and benchmarks.</summary>
    public static bool IsZeroPageScalar(ReadOnlySpan<byte> page)
    {
        if (page.Length != PageSize)
            throw new ArgumentException($"a page is {PageSize} bytes, got {page.Length}", nameof(page));
        foreach (var b in page)
            if (b != 0) return false;
        return true;
    }

    /// <summary>
    /// Classifies <paramref name="pageCount"/> consecutive pages of <paramref name="pages"/>; writes one flag per
    /// page to <paramref name="isZero"/> and returns how many are zero.
    /// </summary>
    public static int ClassifyPages(ReadOnlySpan<byte> pages, int pageCount, Span<bool> isZero)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pageCount);
        if ((long)pageCount * PageSize > pages.Length)
            throw new ArgumentException($"{pageCount} pages need {(long)pageCount * PageSize} bytes, span has {pages.Length}", nameof(pages));
        if (isZero.Length < pageCount)
            throw new ArgumentException($"{pageCount} pages need {pageCount} flags, span has {isZero.Length}", nameof(isZero));
        ref var page = ref MemoryMarshal.GetReference(pages);
        ref var flag = ref MemoryMarshal.GetReference(isZero);
        var zeros = 0;
        for (var i = 0; i < pageCount; i++)
        {
            var zero = IsZeroPageCore(ref page);
            Unsafe.Add(ref flag, i) = zero;
            zeros += zero ? 1 : 0;
            page = ref Unsafe.Add(ref page, PageSize);
        }
        return zeros;
    }

    /// <summary>
    /// One page at <paramref name="page"/> (caller guarantees 4096 readable bytes). With Vector512: the first 8 bytes as a word, then
    /// bytes [0, 64), then [64, 256) as three vectors, then 15 blocks of four vectors, one test per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsZeroPageCore(ref byte page)
    {
        if (!Vector512.IsHardwareAccelerated)
            return Vector256.IsHardwareAccelerated ? IsAllZero256(ref page, PageSize) : IsAllZero(MemoryMarshal.CreateReadOnlySpan(ref page, PageSize));
        const int V = 64;
        // One 8-byte word first: the cheapest possible rejection for the common non-zero page.
        if (Unsafe.ReadUnaligned<ulong>(ref page) != 0) return false;
        if (Vector512.LoadUnsafe(ref page) != Vector512<byte>.Zero) return false;
        if ((Vector512.LoadUnsafe(ref page, V) | Vector512.LoadUnsafe(ref page, 2 * V) | Vector512.LoadUnsafe(ref page, 3 * V))
            != Vector512<byte>.Zero) return false;
        for (nuint i = 4 * V; i < PageSize; i += 4 * V)
        {
            var acc = Vector512.LoadUnsafe(ref page, i) | Vector512.LoadUnsafe(ref page, i + V)
                    | Vector512.LoadUnsafe(ref page, i + 2 * V) | Vector512.LoadUnsafe(ref page, i + 3 * V);
            if (acc != Vector512<byte>.Zero) return false;
        }
        return true;
    }

    /// <summary>True if every byte of <paramref name="data"/> (any length, including 0) is zero.</summary>
    public static bool IsAllZero(ReadOnlySpan<byte> data)
    {
        ref var start = ref MemoryMarshal.GetReference(data);
        var length = (nuint)data.Length;
        if (Vector512.IsHardwareAccelerated && length >= (nuint)Vector512<byte>.Count)
            return IsAllZero512(ref start, length);
        if (Vector256.IsHardwareAccelerated && length >= (nuint)Vector256<byte>.Count)
            return IsAllZero256(ref start, length);
        if (Vector128.IsHardwareAccelerated && length >= (nuint)Vector128<byte>.Count)
            return IsAllZero128(ref start, length);
        return IsAllZeroWords(ref start, length);
    }

    /// <summary>
    /// Test hook: runs the path of the given vector width (512, 256, 128, or 64 = words) where the hardware has
    /// it, so the fallbacks are covered on machines that would never pick them. Returns null if unsupported.
    /// </summary>
    internal static bool? IsAllZeroUsingWidth(ReadOnlySpan<byte> data, int bits)
    {
        ref var start = ref MemoryMarshal.GetReference(data);
        var length = (nuint)data.Length;
        switch (bits)
        {
            case 512 when !Vector512.IsHardwareAccelerated:
            case 256 when !Vector256.IsHardwareAccelerated:
            case 128 when !Vector128.IsHardwareAccelerated:
                return null;
            case 512 when length >= 64: return IsAllZero512(ref start, length);
            case 256 when length >= 32: return IsAllZero256(ref start, length);
            case 128 when length >= 16: return IsAllZero128(ref start, length);
            case 512 or 256 or 128 or 64: return IsAllZeroWords(ref start, length);
            default: throw new ArgumentOutOfRangeException(nameof(bits), bits, "512, 256, 128 or 64");
        }
    }

    // Each IsAllZeroNNN requires length >= one vector. Offsets are in bytes.

    private static bool IsAllZero512(ref byte start, nuint length)
    {
        const int V = 64;
        if (Vector512.LoadUnsafe(ref start) != Vector512<byte>.Zero) return false; // the usual early exit
        nuint i = V;
        for (; i + 4 * V <= length; i += 4 * V)
        {
            var acc = Vector512.LoadUnsafe(ref start, i) | Vector512.LoadUnsafe(ref start, i + V)
                    | Vector512.LoadUnsafe(ref start, i + 2 * V) | Vector512.LoadUnsafe(ref start, i + 3 * V);
            if (acc != Vector512<byte>.Zero) return false;
        }
        for (; i + V <= length; i += V)
            if (Vector512.LoadUnsafe(ref start, i) != Vector512<byte>.Zero) return false;
        return i == length || Vector512.LoadUnsafe(ref start, length - V) == Vector512<byte>.Zero;
    }

    private static bool IsAllZero256(ref byte start, nuint length)
    {
        const int V = 32;
        if (length >= 2 * V
            && (Vector256.LoadUnsafe(ref start) | Vector256.LoadUnsafe(ref start, V)) != Vector256<byte>.Zero) return false;
        nuint i = length >= 2 * V ? (nuint)(2 * V) : 0;
        for (; i + 4 * V <= length; i += 4 * V)
        {
            var acc = Vector256.LoadUnsafe(ref start, i) | Vector256.LoadUnsafe(ref start, i + V)
                    | Vector256.LoadUnsafe(ref start, i + 2 * V) | Vector256.LoadUnsafe(ref start, i + 3 * V);
            if (acc != Vector256<byte>.Zero) return false;
        }
        for (; i + V <= length; i += V)
            if (Vector256.LoadUnsafe(ref start, i) != Vector256<byte>.Zero) return false;
        return i == length || Vector256.LoadUnsafe(ref start, length - V) == Vector256<byte>.Zero;
    }

    private static bool IsAllZero128(ref byte start, nuint length)
    {
        const int V = 16;
        nuint i = 0;
        for (; i + 4 * V <= length; i += 4 * V)
        {
            var acc = Vector128.LoadUnsafe(ref start, i) | Vector128.LoadUnsafe(ref start, i + V)
                    | Vector128.LoadUnsafe(ref start, i + 2 * V) | Vector128.LoadUnsafe(ref start, i + 3 * V);
            if (acc != Vector128<byte>.Zero) return false;
        }
        for (; i + V <= length; i += V)
            if (Vector128.LoadUnsafe(ref start, i) != Vector128<byte>.Zero) return false;
        return i == length || Vector128.LoadUnsafe(ref start, length - V) == Vector128<byte>.Zero;
    }

    /// <summary>Portable fallback and short inputs: 64-bit words, then an overlapping last word, then bytes.</summary>
    private static bool IsAllZeroWords(ref byte start, nuint length)
    {
        if (length >= sizeof(ulong))
        {
            nuint i = 0;
            for (; i + sizeof(ulong) <= length; i += sizeof(ulong))
                if (Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)) != 0) return false;
            return i == length || Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, length - sizeof(ulong))) == 0;
        }
        for (nuint i = 0; i < length; i++)
            if (Unsafe.Add(ref start, i) != 0) return false;
        return true;
    }
}
