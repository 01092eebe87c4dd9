using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Reporting;
using Migration.Actors.Settings;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Guest;

namespace Migration.Actors.Source;

/// <summary>
/// Convergence of one source migration (docs/architecture.md "Convergence" and "Downtime estimate"): the downtime
/// estimate and its measured inputs (digest-rate probes, control pings, this node's stop-phase history), the
/// switchover decision with auto-converge, the precopy bandwidth limit, and the operator's live changes. The decisions
/// are made by the pure classes in Source/Convergence; this class feeds them measurements and applies their answers to
/// the guest (throttle) and the transfer (pacer). The coordinator decides what a phase does with the answers.
/// Threading: a plain object owned by the MigrationCoordinator and called only on that actor's thread; the digest
/// probe runs on the thread pool and its result comes back as a <see cref="DigestProbed"/> message to the coordinator.
/// </summary>
internal sealed class SourceConvergence
{
    private static readonly TimeSpan DigestProbeInterval = TimeSpan.FromMilliseconds(500);
    private const int RecentDigestProbes = 4;
    private const long MinDigestSampleBytes = 256L << 20;

    private readonly Guid _id;
    private readonly GuestVm _guest;
    private readonly MigrationSettings _settings;
    private readonly MigrationStats _stats;
    private readonly Stopwatch _clock;
    private readonly StopPhaseHistory _history;
    private readonly TimelineRecorder _timeline;
    private readonly ILoggingAdapter _log;
    private readonly IActorRef _self;
    private readonly Queue<double> _probeResults = new();
    private DowntimeEstimator? _estimatorField;
    private ConvergencePolicy? _policyField;
    private double _downtimeLimitMs = -1;
    private long _maxBandwidth = -1;
    private double _digestRateProbed;
    private bool _probing;
    private double _lastProbeMs = -1;
    private readonly ControlRoundTrip _roundTrip = new();
    private long _precopyWireBytes;
    private double _precopyEndMs;
    private long _stopWireBytes;
    private double _digestStartMs;
    private double _commitSentMs = -1;

    public SourceConvergence(Guid id, GuestVm guest, MigrationSettings settings, MigrationStats stats, Stopwatch clock, StopPhaseHistory history,
        TimelineRecorder timeline, ILoggingAdapter log, IActorRef self)
    {
        _id = id;
        _guest = guest;
        _settings = settings;
        _stats = stats;
        _clock = clock;
        _history = history;
        _timeline = timeline;
        _log = log;
        _self = self;
    }

    private DowntimeEstimator Estimator => _estimatorField ??= new DowntimeEstimator(_settings.StopCopyRateFactor);

    private ConvergencePolicy Policy => _policyField ??= new ConvergencePolicy(_settings.AutoConverge with { Enabled = AutoConvergeOn }, _settings.MaxIterations);

    private bool AutoConvergeOn => _policyField?.AutoConverge.Enabled ?? _settings.AutoConverge.Enabled;

    /// <summary>The downtime limit in force (the operator may change it while migrating).</summary>
    private double DowntimeLimitMs => _downtimeLimitMs > 0 ? _downtimeLimitMs : _settings.DowntimeLimit.TotalMilliseconds;

    /// <summary>The guest's auto-converge throttle now, percent (0 = none).</summary>
    public int ThrottlePercent => _policyField?.ThrottlePercent ?? 0;

    public int MaxThrottlePercent => _policyField?.MaxThrottlePercent ?? 0;

    /// <summary>The precopy bandwidth limit in force, bytes/s (0 = unlimited).</summary>
    public long MaxBandwidth => _maxBandwidth >= 0 ? _maxBandwidth : _settings.MaxBandwidth;

    /// <summary>Why the switchover happened (null before it), the estimate it was made on, and whether it was forced.</summary>
    public string? SwitchoverReason { get; private set; }

    public DowntimeEstimate? SwitchoverEstimate { get; private set; }

    public bool Forced { get; private set; }

    /// <summary>The operator asked for the switchover at the next iteration boundary.</summary>
    public void RequestSwitchover() => Policy.RequestSwitchover();

    /// <summary>
    /// The operator's live change: validated entirely before anything changes; applied only if <paramref name="open"/>
    /// (the state allows it). Returns the reply for the sender; <paramref name="applied"/> says whether it changed anything.
    /// </summary>
    public object SetParameters(SetMigrationParameters p, bool open, string phase, SourceTransfer? transfer, out bool applied)
    {
        applied = false;
        if (p.DowntimeLimitMs is { } limit && !(limit > 0 && double.IsFinite(limit)))
        {
            return new CommandFailed($"downtime limit {limit} ms: expected a positive number of milliseconds", "bad-settings");
        }

        if (p.MaxBandwidth is < 0)
        {
            return new CommandFailed($"max bandwidth {p.MaxBandwidth} bytes/s: expected >= 0 (0 = unlimited)", "bad-settings");
        }

        if (!open)
        {
            return new CommandFailed($"migration {_id} is in phase {phase}; too late to change it", "too-late");
        }

        if (p.DowntimeLimitMs is { } l)
        {
            _downtimeLimitMs = l;
        }

        if (p.MaxBandwidth is { } bw)
        {
            _maxBandwidth = bw;
            transfer?.Pacer.SetRate(bw);
        }

        if (p.AutoConverge is { } on)
        {
            var throttle = Policy.SetAutoConverge(on);
            _guest.Workload.SetThrottle(throttle);
            RecordThrottle(throttle);
        }

        _log.Info("migration {0}: parameters changed by operator: downtime limit {1:0} ms, max bandwidth {2} B/s, auto-converge {3}",
            _id, DowntimeLimitMs, _maxBandwidth, AutoConvergeOn ? "on" : "off");
        applied = true;
        return new MigrationParametersChanged(_id, DowntimeLimitMs, _maxBandwidth, AutoConvergeOn, phase);
    }

    /// <summary>The estimate of switching over now, from this migration's and this node's measurements.</summary>
    public DowntimeEstimate Estimate(SourceTransfer t, SourceRamDigests? segmentDigests, double setupMs)
    {
        var dirty = t.DirtyBytes;
        var devices = t.DevicesLeft(out var device);
        var history = _history;
        var precopyRate = _stats.TransferRateBytesPerMs(_clock.Elapsed.TotalMilliseconds - setupMs);
        // Both are measurements of the same hash on this machine; each errs slow (a probe that lost its core, a stop
        // phase that waited for the thread pool), so the faster one is the better figure.
        var digestRate = Math.Max(history.DigestRateBytesPerMs, _digestRateProbed);
        // One control round trip: the commit round trip an earlier migration of this node measured after its stop, or
        // the ping of this one, whichever is longer (the ping is taken while the guest runs, the commit after the stop).
        var rtt = Math.Max(history.CommitRoundTripMs, _roundTrip.CurrentMs(_clock.Elapsed.TotalMilliseconds));
        return Estimator.Estimate(new DowntimeInputs(dirty, device, precopyRate, history.StopCopyRateBytesPerMs, _stats.LoadRateBytesPerMs(),
            _guest.Blocks.Sum(b => b.SizeBytes), digestRate, rtt,
            devices,
            // Only segments written since their last hash are hashed after the stop, on both sides.
            segmentDigests?.BytesToHashAtStop(_guest.Blocks) ?? -1,
            _settings.ChunkSize,
            // The destination loads on min(devices, cores) threads (IncomingMigration's worker pool).
            Math.Clamp(devices.Length, 1, Environment.ProcessorCount)));
    }

    /// <summary>
    /// Every channel has sent Sync(<paramref name="iteration"/>): asks the policy whether to switch over (true) and how
    /// hard to throttle the guest; pings the destination and probes the digest rate for the next estimate.
    /// </summary>
    public bool SwitchOverAtIterationEnd(uint iteration, double iterationMs, DowntimeEstimate estimate, IActorRef incoming)
    {
        _stats.LastExpectedDowntimeMs = estimate.TotalMs;
        Ping(incoming);
        ProbeDigestRate();
        var decision = Policy.OnIterationEnd(iteration, estimate.RemainingBytes, estimate.TotalMs, DowntimeLimitMs);
        _log.Debug("migration {0}: iteration {1} took {2:0} ms; remaining {3} bytes; expected downtime {4}; throttle {5} %",
            _id, iteration, iterationMs, estimate.RemainingBytes, estimate, decision.ThrottlePercent);
        if (decision.ThrottleChanged)
        {
            _log.Info("migration {0}: iteration {1} did not converge (expected downtime {2:0} ms > {3:0} ms): guest throttled to {4} %",
                _id, iteration, estimate.TotalMs, DowntimeLimitMs, decision.ThrottlePercent);
            _guest.Workload.SetThrottle(decision.ThrottlePercent);
            RecordThrottle(decision.ThrottlePercent);
        }

        if (!decision.Switchover)
        {
            return false;
        }

        SwitchoverReason = decision.Reason;
        SwitchoverEstimate = estimate;
        Forced = decision.Reason != Convergence.SwitchoverReason.Converged;
        if (Forced)
        {
            _log.Info("migration {0}: switching over after {1} iterations ({2}); expected downtime {3} > limit {4:0} ms",
                _id, iteration, decision.Reason, estimate, DowntimeLimitMs);
        }

        return true;
    }

    /// <summary>Precopy starts: the bandwidth limit applies, and the digest rate is probed off the actor thread.</summary>
    public void OnPrecopyStarting(SourceTransfer t, IActorRef incoming)
    {
        t.Pacer.SetRate(MaxBandwidth);
        ProbeDigestRate();
        Ping(incoming);
    }

    /// <summary>
    /// Probes the digest rate at precopy start and then at iteration ends, at most every <see cref="DigestProbeInterval"/>
    /// (one at a time; ~1-2 % of a core), and uses the fastest of the last <see cref="RecentDigestProbes"/>: a probe
    /// lasts a few ms, and on a loaded machine one that lost the core for a while measures the scheduler, not the hash;
    /// the recent ones describe the machine as it is near the switchover (the guest throttled, say).
    /// </summary>
    private void ProbeDigestRate()
    {
        var now = _clock.Elapsed.TotalMilliseconds;
        if (_probing || (_lastProbeMs >= 0 && now - _lastProbeMs < DigestProbeInterval.TotalMilliseconds))
        {
            return;
        }

        _probing = true;
        _lastProbeMs = now;
        var blocks = _guest.Blocks;
        Task.Run(() => new DigestProbed(DigestRateProbe.Measure(blocks))).PipeTo(_self);
    }

    public void OnDigestProbed(DigestProbed d)
    {
        _probing = false;
        _probeResults.Enqueue(d.BytesPerMs);
        while (_probeResults.Count > RecentDigestProbes)
        {
            _probeResults.Dequeue();
        }

        _digestRateProbed = _probeResults.Max();
    }

    /// <summary>The guest stops: the stop-copy phase runs at full speed; remember where its measurements start.</summary>
    public void OnGuestStopping(SourceTransfer t)
    {
        _precopyWireBytes = _stats.WireBytes;
        _precopyEndMs = _clock.Elapsed.TotalMilliseconds;
        _stopWireBytes = _stats.WireBytes;
        _digestStartMs = _precopyEndMs;
        t.Pacer.Enabled = false;
    }

    public void OnSourceDigestDone()
    {
        // A small guest's digest time is mostly the Task.Run and mailbox latency around it, not hashing: not a rate.
        var bytes = _guest.Blocks.Sum(b => b.SizeBytes);
        if (bytes >= MinDigestSampleBytes)
        {
            _history.RecordDigest(bytes, _clock.Elapsed.TotalMilliseconds - _digestStartMs);
        }
    }

    /// <summary>Every channel sent End: the stop-copy transfer is over; record its rate for later estimates.</summary>
    public void OnStopCopySent(double stopMs) =>
        _history.RecordStopCopy(_stats.WireBytes - _stopWireBytes, _clock.Elapsed.TotalMilliseconds - stopMs);

    public void OnCommitSent() => _commitSentMs = _clock.Elapsed.TotalMilliseconds;

    public void OnResumeConfirmed()
    {
        if (_commitSentMs >= 0)
        {
            _history.RecordCommitRoundTrip(_clock.Elapsed.TotalMilliseconds - _commitSentMs);
        }
    }

    /// <summary>The migration ended (any status): the guest runs unthrottled (here, or on the destination, which never throttles it).</summary>
    public void LiftThrottle()
    {
        if (_policyField is { ThrottlePercent: > 0 })
        {
            _policyField.SetAutoConverge(false);
        }

        _guest.Workload.SetThrottle(0);
    }

    /// <summary>Measures the control round trip to the destination's incoming actor (Identify is answered by every actor).</summary>
    private void Ping(IActorRef incoming)
    {
        if (!incoming.IsNobody() && _roundTrip.TryStart(_clock.Elapsed.TotalMilliseconds) is { } id)
        {
            incoming.Tell(new Identify(id));
        }
    }

    public void OnPong(ActorIdentity id)
    {
        if (id.MessageId is long n)
        {
            _roundTrip.OnAnswer(n, _clock.Elapsed.TotalMilliseconds);
        }
    }

    public double PrecopyThroughputMiBps(double setupMs)
    {
        var end = _precopyEndMs > 0 ? _precopyEndMs : _clock.Elapsed.TotalMilliseconds;
        var bytes = _precopyEndMs > 0 ? _precopyWireBytes : _stats.WireBytes;
        var ms = end - setupMs;
        return ms <= 0 || setupMs <= 0 ? 0 : bytes / (1024.0 * 1024.0) / (ms / 1000.0);
    }

    /// <summary>Auto-converge reports each throttle step to the timeline (percent of guest CPU taken away; 0 = released).</summary>
    private void RecordThrottle(int percent) => _timeline.Throttled(_clock.Elapsed.TotalMilliseconds, percent);
}

/// <summary>A digest-rate probe's result (thread pool -> coordinator -> <see cref="SourceConvergence.OnDigestProbed"/>).</summary>
internal sealed record DigestProbed(double BytesPerMs) : INoSerializationVerificationNeeded;
