namespace Migration.Actors.Source.Convergence;

/// <summary>
/// What one downtime estimate is made of: every term between the guest's stop on the source and its resume on the
/// destination (docs/architecture.md "Downtime estimate"). All times in milliseconds.
/// </summary>
/// <param name="RemainingBytes">Dirty RAM plus device state still to send (what the stop-copy phase moves).</param>
/// <param name="TransferMs">RemainingBytes at the stop-copy rate.</param>
/// <param name="DeviceLoadMs">The device state still to load at the destination's measured load rate.</param>
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

/// <summary>The measurements one estimate is computed from (a snapshot; see <see cref="DowntimeEstimator"/>).</summary>
/// <param name="DirtyRamBytes">Dirty guest RAM that the final iteration sends.</param>
/// <param name="DeviceBytes">Device state not yet sent (precopy and stop-copy data, read ahead or not).</param>
/// <param name="PrecopyRateBytesPerMs">Measured precopy throughput over all channels.</param>
/// <param name="StopCopyRateBytesPerMs">Measured stop-copy throughput of an earlier migration of this node; 0 = none yet.</param>
/// <param name="LoadRateBytesPerMs">The destination's measured device load rate; 0 = not measured yet.</param>
/// <param name="GuestRamBytes">Guest RAM that both sides hash after the stop.</param>
/// <param name="DigestRateBytesPerMs">Measured RAM digest rate; 0 = not measured yet.</param>
/// <param name="RoundTripMs">Measured control round trip (ping, or an earlier migration's commit round trip).</param>
public readonly record struct DowntimeInputs(
    long DirtyRamBytes,
    long DeviceBytes,
    double PrecopyRateBytesPerMs,
    double StopCopyRateBytesPerMs,
    double LoadRateBytesPerMs,
    long GuestRamBytes,
    double DigestRateBytesPerMs,
    double RoundTripMs);

/// <summary>
/// The expected downtime of switching over now. Pure: every figure comes in through <see cref="DowntimeInputs"/>.
/// The stop-copy rate is the measured one when this node has measured a stop-copy phase, else the precopy rate times
/// <c>stopCopyRateFactor</c> (migration.stop-copy-rate-factor): after the stop the devices' last state streams one
/// chunk at a time per device and both digests compete for the cores, so it is slower than precopy.
/// A term whose rate is not measured yet falls back to the stop-copy rate (never to zero).
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
        var transfer = remaining / rate;
        var load = Math.Max(0, x.DeviceBytes) / (x.LoadRateBytesPerMs >= MinRate ? x.LoadRateBytesPerMs : rate);
        var digest = 0.0;
        if (x.GuestRamBytes > 0)
        {
            var one = x.GuestRamBytes / (x.DigestRateBytesPerMs >= MinRate ? x.DigestRateBytesPerMs : rate);
            digest = one + Math.Max(0, one - transfer);
        }

        return new DowntimeEstimate(remaining, transfer, load, digest, 2 * Math.Max(0, x.RoundTripMs));
    }

    /// <summary>The rate the stop-copy phase is expected to move bytes at (bytes per ms, at least 1).</summary>
    public double StopCopyRate(DowntimeInputs x) =>
        x.StopCopyRateBytesPerMs >= MinRate ? x.StopCopyRateBytesPerMs : Math.Max(MinRate, x.PrecopyRateBytesPerMs * StopCopyRateFactor);
}
