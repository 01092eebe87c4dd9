using Migration.Actors.Messages;

namespace Migration.Actors.Reporting;

/// <summary>
/// Records the timeline of one migration: a sample per progress tick and the events between (iteration boundaries,
/// reconnects, stop, resume, throttle steps). Pure and not thread-safe: owned by the source coordinator and called only
/// on its thread. Bounded: past <see cref="MaxSamples"/> samples every other one is dropped (the resolution halves, the
/// whole migration stays covered), past <see cref="MaxEvents"/> events further iteration and throttle events are dropped
/// (stop and resume are always kept). The bounds keep the report well below Akka's frame limit (it travels to the CLI).
/// </summary>
public sealed class TimelineRecorder
{
    public const int MaxSamples = 600;
    public const int MaxEvents = 200;

    private readonly List<TimelineSample> _samples = [];
    private readonly List<TimelineEvent> _events = [];
    private int _keepEvery = 1;
    private int _sinceKept;
    private int _throttlePercent;

    /// <summary>The throttle percent put into the following samples (auto-converge reports its steps here).</summary>
    public int ThrottlePercent => _throttlePercent;

    public IReadOnlyList<TimelineSample> Samples => _samples;
    public IReadOnlyList<TimelineEvent> Events => _events;

    /// <summary>
    /// Adds a sample. <paramref name="force"/> keeps it even while thinning (the stop, the resume, the end), so the
    /// picture always has the moments that matter.
    /// </summary>
    public void Sample(double timeMs, string phase, int iteration, long ramBytesSent, long deviceBytesSent, long remainingDirtyBytes,
        long deviceBufferBytes, long deviceBufferBudgetBytes, bool force = false)
    {
        if (_samples.Count > 0 && timeMs < _samples[^1].TimeMs)
        {
            throw new ArgumentOutOfRangeException(nameof(timeMs), $"sample at {timeMs} ms is before the previous one at {_samples[^1].TimeMs} ms");
        }

        if (!force && ++_sinceKept < _keepEvery)
        {
            return;
        }

        _sinceKept = 0;
        _samples.Add(new TimelineSample
        {
            TimeMs = timeMs,
            Phase = phase,
            Iteration = iteration,
            RamBytesSent = ramBytesSent,
            DeviceBytesSent = deviceBytesSent,
            RemainingDirtyBytes = remainingDirtyBytes,
            DeviceBufferBytes = deviceBufferBytes,
            DeviceBufferBudgetBytes = deviceBufferBudgetBytes,
            ThrottlePercent = _throttlePercent,
        });
        if (_samples.Count > MaxSamples)
        {
            Thin();
        }
    }

    /// <summary>Precopy iteration <paramref name="iteration"/> begins (the final one runs after the stop).</summary>
    public void IterationStarted(double timeMs, int iteration) => Event(timeMs, TimelineEventKinds.Iteration, iteration, "");

    /// <summary>Channel <paramref name="channel"/> lost its connection and reconnects.</summary>
    public void Reconnect(double timeMs, int channel, string reason) => Event(timeMs, TimelineEventKinds.Reconnect, channel, reason);

    /// <summary>The guest was paused on the source: the downtime starts.</summary>
    public void Stopped(double timeMs) => Event(timeMs, TimelineEventKinds.Stop, 0, "", always: true);

    /// <summary>The guest runs on the destination: the downtime ends.</summary>
    public void Resumed(double timeMs) => Event(timeMs, TimelineEventKinds.Resume, 0, "", always: true);

    /// <summary>Auto-converge changed the guest's throttle to <paramref name="percent"/> (0..99).</summary>
    public void Throttled(double timeMs, int percent)
    {
        if (percent is < 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), $"throttle {percent}%: expected 0..100");
        }

        _throttlePercent = percent;
        Event(timeMs, TimelineEventKinds.Throttle, percent, "");
    }

    private void Event(double timeMs, string kind, long value, string detail, bool always = false)
    {
        if (_events.Count >= MaxEvents && !always)
        {
            return;
        }

        _events.Add(new TimelineEvent { TimeMs = timeMs, Kind = kind, Value = value, Detail = detail });
    }

    /// <summary>Halves the samples (keeps the first, the last and every other one between) and the future sampling rate.</summary>
    private void Thin()
    {
        var kept = new List<TimelineSample>(_samples.Count / 2 + 2);
        for (var i = 0; i < _samples.Count; i++)
        {
            if (i % 2 == 0 || i == _samples.Count - 1)
            {
                kept.Add(_samples[i]);
            }
        }

        _samples.Clear();
        _samples.AddRange(kept);
        _keepEvery *= 2;
    }
}
