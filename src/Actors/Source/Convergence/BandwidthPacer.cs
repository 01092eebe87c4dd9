using System.Diagnostics;

namespace Migration.Actors.Source.Convergence;

/// <summary>
/// A token bucket of bytes per second over all channels of a migration (migration.max-bandwidth). The coordinator's
/// TransferState asks <see cref="CanSend"/> before it hands a job to a channel and <see cref="Spend"/>s the job's
/// payload bytes; when the job is done, <see cref="Refund"/> gives back what the wire did not carry (zero pages,
/// compression), so the limit applies to wire bytes. A job may take the bucket below zero (a job is never split):
/// the next one waits until the debt is repaid, so the average holds whatever the job size. The bucket holds at most
/// <see cref="BurstMs"/> worth of bytes, which keeps bursts small after an idle spell.
/// Rate 0 = unlimited. Not thread-safe: owned by the coordinator, touched only on its thread.
/// </summary>
public sealed class BandwidthPacer
{
    /// <summary>
    /// Most time worth of bytes the bucket accumulates. Well above the scheduler's 10 ms tick: the timer that resumes a
    /// held-back pump fires late on a loaded machine, and whatever the bucket cannot hold meanwhile is bandwidth lost
    /// (measured: with 20 ms a 100 MiB/s limit gave 74 MiB/s at load average 40 on 2 cores).
    /// </summary>
    public const double BurstMs = 50;

    private readonly Func<double> _nowMs;
    private double _tokens;
    private double _lastMs;

    /// <param name="bytesPerSecond">The limit; 0 = unlimited.</param>
    /// <param name="nowMs">Clock in milliseconds (tests pass a fake one); default a Stopwatch.</param>
    public BandwidthPacer(long bytesPerSecond, Func<double>? nowMs = null)
    {
        if (nowMs is null)
        {
            var clock = Stopwatch.StartNew();
            nowMs = () => clock.Elapsed.TotalMilliseconds;
        }

        _nowMs = nowMs;
        _lastMs = _nowMs();
        SetRate(bytesPerSecond);
    }

    /// <summary>The limit in bytes per second; 0 = unlimited.</summary>
    public long BytesPerSecond { get; private set; }

    public bool Unlimited => BytesPerSecond == 0;

    /// <summary>Off during the stop-copy phase: everything goes at full speed.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Changes the limit from now on (the bucket starts full: one burst, then the new rate).</summary>
    public void SetRate(long bytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerSecond);
        Refill();
        BytesPerSecond = bytesPerSecond;
        _tokens = Capacity;
    }

    private double Capacity => BytesPerSecond * BurstMs / 1000.0;

    /// <summary>True when a job may be handed out now.</summary>
    public bool CanSend()
    {
        if (Unlimited || !Enabled)
        {
            return true;
        }

        Refill();
        return _tokens > 0;
    }

    /// <summary>A job of <paramref name="bytes"/> payload bytes was handed out.</summary>
    public void Spend(long bytes)
    {
        if (!Unlimited && Enabled)
        {
            Refill();
            _tokens -= bytes;
        }
    }

    /// <summary>A job carried <paramref name="bytes"/> fewer bytes on the wire than were spent for it (negative: more).</summary>
    public void Refund(long bytes)
    {
        if (!Unlimited && Enabled)
        {
            Refill();
            _tokens = Math.Min(Capacity, _tokens + bytes);
        }
    }

    /// <summary>How long until <see cref="CanSend"/> turns true (0 if it is).</summary>
    public TimeSpan Wait()
    {
        if (CanSend())
        {
            return TimeSpan.Zero;
        }

        // Just past the point where the debt is repaid.
        return TimeSpan.FromMilliseconds((-_tokens * 1000.0 / BytesPerSecond) + 0.5);
    }

    private void Refill()
    {
        var now = _nowMs();
        var elapsed = now - _lastMs;
        _lastMs = now;
        if (elapsed > 0 && BytesPerSecond > 0)
        {
            _tokens = Math.Min(Capacity, _tokens + (elapsed * BytesPerSecond / 1000.0));
        }
    }
}
