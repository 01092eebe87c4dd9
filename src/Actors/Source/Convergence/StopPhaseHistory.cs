using Akka.Actor;

namespace Migration.Actors.Source.Convergence;

/// <summary>
/// What this node measured in the stop phases of its earlier migrations (as source): the stop-copy throughput, the
/// RAM digest rate and the commit round trip. A later migration's downtime estimate uses them instead of assumed
/// figures (docs/architecture.md "Downtime estimate"). One per ActorSystem (an Akka extension); thread-safe, since
/// every coordinator of the node records and reads it. The rates are exponentially weighted (the newest counts half);
/// the commit round trip is the shortest of the recent ones.
/// </summary>
public sealed class StopPhaseHistory : IExtension
{
    private readonly object _gate = new();
    private double _stopCopyRate;
    private double _digestRate;
    /// <summary>The last <see cref="RecentCommitRoundTrips"/> commit round trips, oldest first.</summary>
    private readonly Queue<double> _commitRoundTrips = new();

    /// <summary>How many commit round trips <see cref="CommitRoundTripMs"/> takes the shortest of.</summary>
    public const int RecentCommitRoundTrips = 3;

    public static StopPhaseHistory Get(ActorSystem system) => system.WithExtension<StopPhaseHistory, StopPhaseHistoryProvider>();

    /// <summary>Stop-copy bytes per ms, 0 = none measured yet.</summary>
    public double StopCopyRateBytesPerMs { get { lock (_gate) return _stopCopyRate; } }

    /// <summary>RAM digest bytes per ms, 0 = none measured yet.</summary>
    public double DigestRateBytesPerMs { get { lock (_gate) return _digestRate; } }

    /// <summary>
    /// CommitMigration sent -> GuestResumed received, ms: the shortest of the last <see cref="RecentCommitRoundTrips"/>,
    /// once at least <see cref="MinCommitRoundTrips"/> were measured (0 before: the coordinator then uses its live ping).
    /// Not a blend, and not a single sample: a node's first hand-over to a destination pays that process's JIT of the
    /// claim-and-resume path and its first majority write (measured 224 ms on a quiet machine and 357-1316 ms at load
    /// 30-64, against under 40 ms warm). As the only sample it made the node's second migration expect a 449 ms
    /// verify/commit, so an idle guest with devices could not converge and switched over only at max-iterations (the
    /// CLI's `migrate` there and back and there again, 2026-12-03). The coordinator still takes the longer of this and
    /// its live ping, so a destination that is slow now counts at once.
    /// </summary>
    public double CommitRoundTripMs
    {
        get
        {
            lock (_gate)
            {
                return _commitRoundTrips.Count < MinCommitRoundTrips ? 0 : _commitRoundTrips.Min();
            }
        }
    }

    /// <summary>How many commit round trips must be measured before <see cref="CommitRoundTripMs"/> counts.</summary>
    public const int MinCommitRoundTrips = 2;

    public void RecordStopCopy(long bytes, double ms)
    {
        // A stop-copy phase with almost nothing to move says little about its rate.
        if (bytes >= 1 << 20 && ms > 1)
        {
            lock (_gate) _stopCopyRate = Blend(_stopCopyRate, bytes / ms);
        }
    }

    public void RecordDigest(long bytes, double ms)
    {
        if (bytes > 0 && ms > 0)
        {
            lock (_gate) _digestRate = Blend(_digestRate, bytes / ms);
        }
    }

    public void RecordCommitRoundTrip(double ms)
    {
        if (ms > 0)
        {
            lock (_gate)
            {
                _commitRoundTrips.Enqueue(ms);
                while (_commitRoundTrips.Count > RecentCommitRoundTrips)
                {
                    _commitRoundTrips.Dequeue();
                }
            }
        }
    }

    private static double Blend(double old, double measured) => old <= 0 ? measured : (old + measured) / 2;
}

public sealed class StopPhaseHistoryProvider : ExtensionIdProvider<StopPhaseHistory>
{
    public override StopPhaseHistory CreateExtension(ExtendedActorSystem system) => new();
}
