using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Migration.Devices.Util;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014) used as a counter-based generator: word <c>i</c> of a stream with key
/// <c>k</c> is <c>Mix(k + (i + 1) * Golden)</c>, so any byte range of the stream can be produced directly
/// (random access, no state to carry between calls). Output bytes are little-endian on every platform.
/// <see cref="Fill"/> computes four words at a time with AVX2 where the CPU has it (bit-identical to the scalar
/// <see cref="Word"/>; tests compare both): the simulated VFIO devices generate and verify their state with it, so on
/// the stop phase's critical path (docs/architecture.md) its cost per byte is the device stream's.
/// Pure functions; thread-safe.
/// </summary>
public static class SplitMix64
{
    public const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>The SplitMix64 finalizer: a bijective 64-bit mix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Derives a stream key from up to three values (order matters).</summary>
    public static ulong Key(ulong a, ulong b = 0, ulong c = 0)
        => unchecked(Mix(Mix(Mix(a + Golden) ^ (b + 2 * Golden)) ^ (c + 3 * Golden)));

    /// <summary>Word <paramref name="index"/> of stream <paramref name="key"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Word(ulong key, long index) => Mix(key + (ulong)(index + 1) * Golden);

    /// <summary>Writes bytes [<paramref name="offset"/>, offset + destination.Length) of stream <paramref name="key"/>.</summary>
    public static void Fill(ulong key, long offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (destination.IsEmpty)
            return;
        long word = offset >> 3;
        int skip = (int)(offset & 7);
        if (skip != 0)
        {
            // Leading partial word.
            Span<byte> tmp = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(tmp, Word(key, word++));
            int n = Math.Min(8 - skip, destination.Length);
            tmp.Slice(skip, n).CopyTo(destination);
            destination = destination[n..];
        }
        int whole = destination.Length >> 3;
        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(destination[..(whole << 3)]);
        ulong counter = key + (ulong)(word + 1) * Golden;
        if (BitConverter.IsLittleEndian)
        {
            int i = 0;
            if (Avx2.IsSupported && words.Length >= 8)
            {
                i = FillAvx2(words, counter);
                counter += (ulong)i * Golden;
            }

            for (; i < words.Length; i++, counter += Golden)
                words[i] = Mix(counter);
        }
        else
        {
            for (int i = 0; i < words.Length; i++, counter += Golden)
                words[i] = BinaryPrimitives.ReverseEndianness(Mix(counter));
        }
        int tail = destination.Length & 7;
        if (tail != 0)
        {
            Span<byte> tmp = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(tmp, Mix(counter));
            tmp[..tail].CopyTo(destination[(whole << 3)..]);
        }
    }

    /// <summary>
    /// Writes words [0, n) with n = words.Length rounded down to a multiple of 8 (two vectors of four per step, so the
    /// multiplies of one overlap the other's shifts); returns n. Word i gets Mix(counter + i * Golden).
    /// </summary>
    private static int FillAvx2(Span<ulong> words, ulong counter)
    {
        var step = Vector256.Create(unchecked(8 * Golden));
        var a = Vector256.Create(counter, unchecked(counter + Golden), unchecked(counter + 2 * Golden), unchecked(counter + 3 * Golden));
        var b = a + Vector256.Create(unchecked(4 * Golden));
        ref ulong first = ref MemoryMarshal.GetReference(words);
        int n = words.Length & ~7;
        for (int i = 0; i < n; i += 8)
        {
            MixAvx2(a).StoreUnsafe(ref first, (nuint)i);
            MixAvx2(b).StoreUnsafe(ref first, (nuint)(i + 4));
            a += step;
            b += step;
        }

        return n;
    }

    /// <summary><see cref="Mix"/> on four lanes (AVX2 has no 64-bit multiply: <see cref="MultiplyLow"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> MixAvx2(Vector256<ulong> z)
    {
        z = MultiplyLow(z ^ Vector256.ShiftRightLogical(z, 30), 0xBF58476D1CE4E5B9UL);
        z = MultiplyLow(z ^ Vector256.ShiftRightLogical(z, 27), 0x94D049BB133111EBUL);
        return z ^ Vector256.ShiftRightLogical(z, 31);
    }

    /// <summary>
    /// The low 64 bits of z * c per lane, from three 32 x 32 -> 64 bit multiplies (vpmuludq):
    /// lo(z)lo(c) + ((hi(z)lo(c) + lo(z)hi(c)) &lt;&lt; 32); the hi x hi term only affects bits above 64.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> MultiplyLow(Vector256<ulong> z, ulong c)
    {
        var cLo = Vector256.Create(c & 0xFFFFFFFFUL).AsUInt32();
        var cHi = Vector256.Create(c >> 32).AsUInt32();
        var low = Avx2.Multiply(z.AsUInt32(), cLo);
        var cross = Avx2.Multiply(Vector256.ShiftRightLogical(z, 32).AsUInt32(), cLo) + Avx2.Multiply(z.AsUInt32(), cHi);
        return low + Vector256.ShiftLeft(cross, 32);
    }
}
