using System.Diagnostics;
using System.IO.Hashing;
using Migration.Devices.Ram;

namespace Migration.Actors.Source.Convergence;

/// <summary>
/// Measures how fast this machine hashes guest RAM, for the digest term of the downtime estimate while the node has
/// not measured a real stop-phase digest yet: XxHash128 (the digest's hash) over a sample of the guest's first block,
/// in as many parallel slices as RamBlock.ComputeDigest uses cores. Runs off the actor thread (Task.Run); reads RAM
/// the workload may be writing, which is harmless for timing. Costs a few ms of CPU per migration.
/// </summary>
public static class DigestRateProbe
{
    private const long SliceBytes = 32L << 20;

    /// <summary>Bytes per ms; 0 if the guest has no RAM.</summary>
    public static unsafe double Measure(IReadOnlyList<RamBlock> blocks)
    {
        var block = blocks.FirstOrDefault(b => b.SizeBytes > 0);
        if (block is null)
        {
            return 0;
        }

        var slices = (int)Math.Clamp(block.SizeBytes / SliceBytes, 1, Environment.ProcessorCount);
        var slice = Math.Min(SliceBytes, block.SizeBytes / slices);
        var basePtr = (nint)block.BasePointer;
        var clock = Stopwatch.StartNew();
        Parallel.For(0, slices, i =>
        {
            var h = new XxHash128();
            for (var offset = i * slice; offset < (i + 1) * slice; offset += 1 << 20)
            {
                h.Append(new ReadOnlySpan<byte>((byte*)basePtr + offset, (int)Math.Min(1 << 20, ((i + 1) * slice) - offset)));
            }

            _ = h.GetCurrentHashAsUInt128();
        });
        var ms = clock.Elapsed.TotalMilliseconds;
        return ms <= 0 ? 0 : slices * slice / ms;
    }
}
