namespace Migration.Actors.Destination;

/// <summary>
/// The destination node's own GC allocation over one incoming migration (issue 9 point 6): in total from prepare to
/// verification, and per GiB of guest pages delivered while they stream (sampled every few hundred ms between the
/// first sample past <see cref="MinStartBytes"/> and the last one). Process-wide figures: everything the node
/// allocates meanwhile counts (Akka, the cluster's gossip), as a node's operator would see it.
/// Used on the IncomingMigration's thread only.
/// </summary>
public sealed class IncomingAllocationProbe
{
    /// <summary>Steady-state sampling starts once this much has arrived (setup and connection allocation left out).</summary>
    public const long MinStartBytes = 32L << 20;

    private const long MinSpanBytes = 64L << 20;
    private readonly long _start = GC.GetTotalAllocatedBytes(true);
    private (long Alloc, long Bytes)? _first;
    private (long Alloc, long Bytes)? _last;

    /// <summary>A sample while pages stream: <paramref name="bytesDelivered"/> = guest RAM and device-state bytes delivered so far.</summary>
    public void Sample(long bytesDelivered)
    {
        if (bytesDelivered < MinStartBytes || (_last is { } l && l.Bytes == bytesDelivered))
        {
            return;
        }

        var sample = (GC.GetTotalAllocatedBytes(true), bytesDelivered); // precise, as the source's bench probe (every 200 ms)
        _first ??= sample;
        _last = sample;
    }

    /// <summary>Bytes allocated by this process since the probe was created.</summary>
    public long AllocatedBytes() => GC.GetTotalAllocatedBytes(true) - _start;

    /// <summary>MiB allocated per GiB delivered between the first and last samples; null if they span under 64 MiB.</summary>
    public double? SteadyMiBPerGiB => _first is { } f && _last is { } l && l.Bytes - f.Bytes >= MinSpanBytes
        ? (l.Alloc - f.Alloc) / (double)(1 << 20) / ((l.Bytes - f.Bytes) / (double)(1L << 30))
        : null;
}
