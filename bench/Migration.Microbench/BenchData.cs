using System.Text;

namespace Migration.Microbench;

/// <summary>Deterministic inputs shared by the benchmarks (seeded, so runs are comparable).</summary>
public static class BenchData
{
    public const int PageSize = 4096;
    public const int PacketPages = 128;                 // QEMU's multifd packet: 128 pages = 512 KiB
    public const int PacketBytes = PacketPages * PageSize;

    public static byte[] Zero(int bytes) => new byte[bytes];

    public static byte[] Random(int bytes, int seed = 1)
    {
        var data = GC.AllocateUninitializedArray<byte>(bytes, pinned: true);
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>Pages in thirds: text-like (compressible), random, zero - a rough stand-in for a guest's RAM.</summary>
    public static byte[] Mixed(int bytes, int seed = 1)
    {
        var data = new byte[bytes];
        var rng = new Random(seed);
        string[] words = ["migration", "page", "dirty", "bitmap", "channel", "device", "state", "the", "of", "kernel", "0x0000", "\n"];
        for (var p = 0; p * PageSize < bytes; p++)
        {
            var page = data.AsSpan(p * PageSize, Math.Min(PageSize, bytes - p * PageSize));
            switch (p % 3)
            {
                case 0:
                    for (var i = 0; i < page.Length;)
                    {
                        var w = Encoding.ASCII.GetBytes(words[rng.Next(words.Length)] + " ");
                        var n = Math.Min(w.Length, page.Length - i);
                        w.AsSpan(0, n).CopyTo(page[i..]);
                        i += n;
                    }
                    break;
                case 1: rng.NextBytes(page); break;
                default: break;
            }
        }
        return data;
    }
}

/// <summary>Bytes processed by one invocation of the benchmark method; read by <see cref="ThroughputColumn"/>.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BytesPerOperationAttribute(long bytes) : Attribute
{
    public long Bytes { get; } = bytes;
}
