using Akka.Actor;

namespace Migration.Actors.Source.Convergence;

/// <summary>
/// What this node measured in the stop phases of its earlier migrations (as source): the stop-copy throughput, the
/// RAM digest rate and the commit round trip. A later migration's downtime estimate uses them instead of assumed
/// figures (docs/architecture.md "Downtime estimate"). One per ActorSystem (an Akka extension); thread-safe, since
/// every coordinator of the node records and reads it. Figures are exponentially weighted (the newest counts half).
/// </summary>
public sealed class StopPhaseHistory : IExtension
{
    private readonly object _gate = new();
    private double _stopCopyRate;
    private double _digestRate;
    private double _commitRoundTripMs;

    public static StopPhaseHistory Get(ActorSystem system) => system.WithExtension<StopPhaseHistory, StopPhaseHistoryProvider>();

    /// <summary>Stop-copy bytes per ms, 0 = none measured yet.</summary>
    public double StopCopyRateBytesPerMs { get { lock (_gate) return _stopCopyRate; } }

    /// <summary>RAM digest bytes per ms, 0 = none measured yet.</summary>
    public double DigestRateBytesPerMs { get { lock (_gate) return _digestRate; } }

    /// <summary>CommitMigration sent -> GuestResumed received, ms; 0 = none measured yet.</summary>
    public double CommitRoundTripMs { get { lock (_gate) return _commitRoundTripMs; } }

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
            lock (_gate) _commitRoundTripMs = Blend(_commitRoundTripMs, ms);
        }
    }

    private static double Blend(double old, double measured) => old <= 0 ? measured : (old + measured) / 2;
}

public sealed class StopPhaseHistoryProvider : ExtensionIdProvider<StopPhaseHistory>
{
    public override StopPhaseHistory CreateExtension(ExtendedActorSystem system) => new();
}
