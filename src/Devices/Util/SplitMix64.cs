using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Migration.Devices.Util;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014) used as a counter-based generator: word <c>i</c> of a stream with key
/// <c>k</c> is <c>Mix(k + (i + 1) * Golden)</c>, so any byte range of the stream can be produced directly
/// (random access, no state to carry between calls). Output bytes are little-endian on every platform.
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
            for (int i = 0; i < words.Length; i++, counter += Golden)
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
}
