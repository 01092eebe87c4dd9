namespace Migration.Actors.Source.Convergence;

/// <summary>
/// The control round trip to the destination that the downtime estimate counts for verify and commit
/// (docs/architecture.md, "Downtime estimate"). One ping at a time; the latest answer is the figure, and a ping still
/// unanswered counts for as long as it has waited, so a destination that stopped answering never looks fast.
/// Why the latest and not the longest: a ping sent while the channels pour data into a saturated destination waits
/// behind them (1171 ms measured on a fresh destination at 2 cores, against 10-50 ms once the transfer ended), and the
/// verify and commit run after the transfer. Keeping such a figure (the former rule: a longer round trip counts at
/// once, a shorter one halfway) held idle guests in precopy for up to 6 empty iterations while it decayed. The commit
/// round trip measured by earlier migrations (StopPhaseHistory) still bounds the estimate from below.
/// Threading: the coordinator's thread only (not thread-safe).
/// </summary>
public sealed class ControlRoundTrip
{
    private double _latestMs;
    private double _sentMs = -1;
    private long _id;

    /// <summary>Whether a ping is waiting for its answer.</summary>
    public bool Outstanding => _sentMs >= 0;

    /// <summary>Starts a ping at <paramref name="nowMs"/> unless one is outstanding: the id to send with it, or null.</summary>
    public long? TryStart(double nowMs)
    {
        if (Outstanding)
        {
            return null;
        }

        _sentMs = nowMs;
        return ++_id;
    }

    /// <summary>An answer at <paramref name="nowMs"/>: true if it answers the outstanding ping, whose round trip becomes the latest.</summary>
    public bool OnAnswer(long id, double nowMs)
    {
        if (!Outstanding || id != _id)
        {
            return false;
        }

        _latestMs = nowMs - _sentMs;
        _sentMs = -1;
        return true;
    }

    /// <summary>The round trip to count at <paramref name="nowMs"/>: the latest answer, or the outstanding ping's wait if longer.</summary>
    public double CurrentMs(double nowMs) => Math.Max(_latestMs, Outstanding ? nowMs - _sentMs : 0);
}
