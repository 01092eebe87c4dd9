using System.Buffers.Binary;
using System.IO.Hashing;

namespace Migration.Devices.Ram;

/// <summary>
/// The hash functions of the two-level RAM block digest (docs/architecture.md, "Verified end to end"): XxHash128 of
/// each <see cref="SegmentDigests.SegmentBytes"/> segment, then XxHash128 over (segment index, segment digest) in
/// order. Used by <see cref="SegmentDigests"/> (kept current during a migration) and by
/// <see cref="RamBlock.ComputeDigest"/> (the full recomputation both must equal). Stateless and thread-safe.
/// </summary>
public static unsafe class SegmentHashes
{
    /// <summary>The segment hash of <paramref name="length"/> zero bytes (equal to <see cref="HashSegment"/> of such a segment), cached per length.</summary>
    public static UInt128 ZeroDigest(long length) => ZeroDigests.GetOrAdd(length, static l =>
    {
        var h = new XxHash128();
        for (var done = 0L; done < l; done += ZeroChunk.Length)
        {
            h.Append(ZeroChunk.AsSpan(0, (int)Math.Min(ZeroChunk.Length, l - done)));
        }

        return h.GetCurrentHashAsUInt128();
    });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, UInt128> ZeroDigests = new();
    private static readonly byte[] ZeroChunk = new byte[1 << 20]; // read-only: never written

    /// <summary>XxHash128 of segment <paramref name="segment"/>'s bytes (one-shot: equal to appending them in any pieces, and allocation-free).</summary>
    public static UInt128 HashSegment(RamBlock block, int segment)
    {
        var start = segment * SegmentDigests.SegmentBytes;
        var length = (int)(Math.Min(block.SizeBytes, start + SegmentDigests.SegmentBytes) - start); // at most SegmentDigests.SegmentBytes
        return XxHash128.HashToUInt128(new ReadOnlySpan<byte>(block.BasePointer + start, length));
    }

    /// <summary>XxHash128 over (segment index as int64 LE, segment digest as UInt128 LE) in segment order.</summary>
    public static UInt128 Combine(ReadOnlySpan<UInt128> segments)
    {
        var top = new XxHash128();
        Span<byte> entry = stackalloc byte[24];
        for (var i = 0; i < segments.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(entry, i);
            BinaryPrimitives.WriteUInt128LittleEndian(entry[8..], segments[i]);
            top.Append(entry);
        }

        return top.GetCurrentHashAsUInt128();
    }
}
