namespace Migration.Actors.Source;

/// <summary>
/// The expected downtime if the guest stopped now: every remaining byte (dirty RAM and device state) at the measured
/// transfer rate, plus the destination's loading of the device state. Each device is loaded by its own loader, in
/// parallel with the other devices (up to the machine's cores), so the load term is the longest per-device load, not
/// the sum over devices. Until a load was measured, loading is assumed as fast as the transfer (device state with no
/// precopy data then counts twice, never zero). A pure function; the coordinator calls it once per iteration.
/// </summary>
public static class DowntimeEstimate
{
    /// <param name="dirtyBytes">RAM bytes dirty now.</param>
    /// <param name="deviceBytes">Per device: state still to read, read ahead, or read and waiting for a channel.</param>
    /// <param name="rateBytesPerMs">Measured transfer rate (> 0).</param>
    /// <param name="loadRateBytesPerMs">Destination's measured per-loader rate; 0 = not measured yet.</param>
    /// <param name="parallelLoads">How many devices can load at once (cores).</param>
    public static (long RemainingBytes, double DowntimeMs) Compute(long dirtyBytes, IReadOnlyList<long> deviceBytes, double rateBytesPerMs,
        double loadRateBytesPerMs, int parallelLoads)
    {
        long total = 0;
        long longest = 0;
        foreach (var b in deviceBytes)
        {
            total += b;
            longest = Math.Max(longest, b);
        }

        var loaders = Math.Clamp(deviceBytes.Count, 1, Math.Max(1, parallelLoads));
        var loadBytes = Math.Max(longest, (total + loaders - 1) / loaders);
        var loadRate = loadRateBytesPerMs > 0 ? loadRateBytesPerMs : rateBytesPerMs;
        var ms = ((dirtyBytes + total) / rateBytesPerMs) + (loadBytes / loadRate);
        return (dirtyBytes + total, ms);
    }
}
