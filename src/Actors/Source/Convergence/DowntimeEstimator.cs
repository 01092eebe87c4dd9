namespace Migration.Actors.Source.Convergence;

/// <summary>
/// What one downtime estimate is made of: every term between the guest's stop on the source and its resume on the
/// destination (docs/architecture.md "Downtime estimate"). All times in milliseconds.
/// </summary>
/// <param name="RemainingBytes">Dirty RAM plus device state still to send (what the stop-copy phase moves).</param>
/// <param name="TransferMs">RemainingBytes at the wire rate, or the longest device read if that takes longer.</param>
/// <param name="DeviceLoadMs">The part of the destination's in-order device load that outlasts the transfer.</param>
/// <param name="DigestMs">
/// The destination's RAM digest (it starts once every channel ended), plus the part of the source's digest that
/// outlasts the transfer (the source hashes while the last bytes travel).
/// </param>
/// <param name="RoundTripsMs">Verify and commit: SourceDigests -> DestinationVerified, CommitMigration -> GuestResumed.</param>
public sealed record DowntimeEstimate(long RemainingBytes, double TransferMs, double DeviceLoadMs, double DigestMs, double RoundTripsMs)
{
    public double TotalMs => TransferMs + DeviceLoadMs + DigestMs + RoundTripsMs;

    public override string ToString() =>
        $"{TotalMs:0} ms = transfer {TransferMs:0} + device load {DeviceLoadMs:0} + digests {DigestMs:0} + verify/commit {RoundTripsMs:0}";
}

/// <summary>What one device has left at the switchover, for the estimate's read and load terms.</summary>
/// <param name="UnreadBytes">State not yet read from the device (precopy or stop-copy data).</param>
/// <param name="ReadBytes">State read but not sent yet (the saver's read-ahead, the coordinator's queue).</param>
/// <param name="ReadBytesPerMs">The device's measured read throughput (one read at a time); 0 = not measured yet.</param>
public readonly record struct DeviceLeft(long UnreadBytes, long ReadBytes, double ReadBytesPerMs)
{
    public long TotalBytes => Math.Max(0, UnreadBytes) + Math.Max(0, ReadBytes);
}

/// <summary>The measurements one estimate is computed from (a snapshot; see <see cref="DowntimeEstimator"/>).</summary>
/// <param name="DirtyRamBytes">Dirty guest RAM that the final iteration sends.</param>
/// <param name="DeviceBytes">Device state not yet sent (precopy and stop-copy data, read ahead or not).</param>
/// <param name="PrecopyRateBytesPerMs">Measured precopy throughput over all channels.</param>
/// <param name="StopCopyRateBytesPerMs">Measured stop-copy throughput of an earlier migration of this node; 0 = none yet.</param>
/// <param name="LoadRateBytesPerMs">The destination's measured device load rate; 0 = not measured yet.</param>
/// <param name="GuestRamBytes">Guest RAM that both sides hash after the stop when <paramref name="DigestBytes"/> is unknown.</param>
/// <param name="DigestRateBytesPerMs">Measured RAM digest rate; 0 = not measured yet.</param>
/// <param name="RoundTripMs">Measured control round trip (ping, or an earlier migration's commit round trip).</param>
/// <param name="Devices">Per device: what is left and how fast it reads; empty = DeviceBytes as one unmeasured device.</param>
/// <param name="DigestBytes">RAM bytes each side hashes after the stop (the segments written since their last hash); -1 = all of GuestRamBytes.</param>
/// <param name="ChunkBytes">Device chunk size: the last chunk of a device is loaded only after it arrived.</param>
/// <param name="LoaderThreads">Threads the destination loads devices on (one device at a time each); at least 1.</param>
public readonly record struct DowntimeInputs(
    long DirtyRamBytes,
    long DeviceBytes,
    double PrecopyRateBytesPerMs,
    double StopCopyRateBytesPerMs,
    double LoadRateBytesPerMs,
    long GuestRamBytes,
    double DigestRateBytesPerMs,
    double RoundTripMs,
    IReadOnlyList<DeviceLeft>? Devices = null,
    long DigestBytes = -1,
    long ChunkBytes = 1 << 20,
    int LoaderThreads = 1);

/// <summary>
/// The expected downtime of switching over now, modelled the way the stop phase runs (docs/architecture.md
/// "Downtime estimate"). Pure: every figure comes in through <see cref="DowntimeInputs"/>.
/// <list type="bullet">
/// <item>Transfer: the channels move everything left at the wire rate (the stop-copy rate this node measured, else the
/// precopy rate times <c>stopCopyRateFactor</c>, migration.stop-copy-rate-factor), and each device's stream is read one
/// chunk after the other at its measured read rate, all devices at once: the longer of the two.</item>
/// <item>Device load: the destination loads each device strictly in order while its chunks arrive, so loading overlaps
/// the transfer; what is left after the last byte arrived is the part of the load that outlasts the transfer (the
/// longest device, or all devices' load spread over the loader threads), and at least the last chunk's load.</item>
/// <item>Digests: both sides hash only the segments written since their last hash; the source's digest starts at the
/// stop (parallel to the transfer), the destination's once every channel ended.</item>
/// </list>
/// A term whose rate is not measured yet falls back to the wire rate (never to zero).
/// </summary>
public sealed class DowntimeEstimator(double stopCopyRateFactor)
{
    /// <summary>Below this a rate counts as unmeasured (bytes per ms; 1 KB/s).</summary>
    private const double MinRate = 1.0;

    public double StopCopyRateFactor { get; } = stopCopyRateFactor is > 0 and <= 1
        ? stopCopyRateFactor
        : throw new ArgumentOutOfRangeException(nameof(stopCopyRateFactor), stopCopyRateFactor, "expected > 0 and <= 1");

    public DowntimeEstimate Estimate(DowntimeInputs x)
    {
        var remaining = Math.Max(0, x.DirtyRamBytes) + Math.Max(0, x.DeviceBytes);
        var rate = StopCopyRate(x);
        var devices = x.Devices is { Count: > 0 } list ? list : [new DeviceLeft(Math.Max(0, x.DeviceBytes), 0, 0)];

        // Each device's stream is read sequentially; devices read in parallel.
        var read = 0.0;
        foreach (var d in devices)
        {
            if (d.ReadBytesPerMs >= MinRate)
            {
                read = Math.Max(read, Math.Max(0, d.UnreadBytes) / d.ReadBytesPerMs);
            }
        }

        var transfer = Math.Max(remaining / rate, read);

        var loadRate = x.LoadRateBytesPerMs >= MinRate ? x.LoadRateBytesPerMs : rate;
        var longest = 0.0;
        var sum = 0.0;
        foreach (var d in devices)
        {
            var ms = d.TotalBytes / loadRate;
            longest = Math.Max(longest, ms);
            sum += ms;
        }

        var load = 0.0;
        if (sum > 0)
        {
            var span = Math.Max(longest, sum / Math.Max(1, x.LoaderThreads));
            var lastChunk = Math.Min(Math.Max(1, x.ChunkBytes), devices.Max(d => d.TotalBytes)) / loadRate;
            load = Math.Max(lastChunk, span - transfer);
        }

        var digest = 0.0;
        var digestBytes = x.DigestBytes >= 0 ? Math.Min(x.DigestBytes, Math.Max(0, x.GuestRamBytes)) : Math.Max(0, x.GuestRamBytes);
        if (digestBytes > 0)
        {
            var one = digestBytes / (x.DigestRateBytesPerMs >= MinRate ? x.DigestRateBytesPerMs : rate);
            digest = one + Math.Max(0, one - transfer);
        }

        return new DowntimeEstimate(remaining, transfer, load, digest, 2 * Math.Max(0, x.RoundTripMs));
    }

    /// <summary>The rate the channels are expected to move bytes at after the stop (bytes per ms, at least 1).</summary>
    public double StopCopyRate(DowntimeInputs x) =>
        x.StopCopyRateBytesPerMs >= MinRate ? x.StopCopyRateBytesPerMs : Math.Max(MinRate, x.PrecopyRateBytesPerMs * StopCopyRateFactor);
}
