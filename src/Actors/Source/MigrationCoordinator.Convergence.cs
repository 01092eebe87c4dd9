using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Ram;

namespace Migration.Actors.Source;

// Convergence (docs/architecture.md "Convergence" and "Downtime estimate"): the downtime estimate and its measured
// inputs, the switchover decision with auto-converge, the precopy bandwidth limit, and the operator's live changes
// (SetMigrationParameters, ForceSwitchover). The decisions are made by the pure classes in Source/Convergence; this
// part feeds them measurements and applies their answers. Everything runs on the coordinator's thread.
public sealed partial class MigrationCoordinator
{
    private DowntimeEstimator? _estimatorField;
    private ConvergencePolicy? _policyField;
    private readonly ProgressTracker _progressTracker = new();
    private double _downtimeLimitMs = -1;
    private string? _switchoverReason;
    private DowntimeEstimate? _switchoverEstimate;
    private double _digestRateProbed;
    private double _roundTripMs;
    private double _pingSentMs = -1;
    private long _pingId;
    private long _precopyWireBytes;
    private double _precopyEndMs;
    private long _stopWireBytes;
    private double _digestStartMs;
    private double _commitSentMs = -1;

    private DowntimeEstimator Estimator => _estimatorField ??= new DowntimeEstimator(_settings.StopCopyRateFactor);

    private ConvergencePolicy Policy => _policyField ??= new ConvergencePolicy(_settings.AutoConverge with { Enabled = AutoConvergeOn }, _settings.MaxIterations);

    private bool AutoConvergeOn => _policyField?.AutoConverge.Enabled ?? _settings.AutoConverge.Enabled;

    /// <summary>The downtime limit in force (the operator may change it while migrating).</summary>
    private double DowntimeLimitMs => _downtimeLimitMs > 0 ? _downtimeLimitMs : _settings.DowntimeLimit.TotalMilliseconds;

    /// <summary>The guest's auto-converge throttle now, percent (0 = none); read by progress and the timeline.</summary>
    public int ThrottlePercent => _policyField?.ThrottlePercent ?? 0;

    private StopPhaseHistory History => StopPhaseHistory.Get(Context.System);

    /// <summary>
    /// Handlers of the convergence commands and measurements, shared by every pre-commit state; the state says whether
    /// a switchover may still be requested and whether the parameters may still change (each gets a too-late reply otherwise).
    /// </summary>
    private void ConvergenceHandlers(bool switchoverOpen, bool parametersOpen)
    {
        Receive<SetMigrationParameters>(p => OnSetParameters(p, parametersOpen));
        Receive<ForceSwitchover>(f =>
        {
            if (!switchoverOpen)
            {
                Sender.Tell(new CommandFailed($"migration {_id} is in phase {PhaseName}; the switchover has already begun", "too-late"));
                return;
            }

            Policy.RequestSwitchover();
            Sender.Tell(new SwitchoverAccepted(_id, PhaseName));
        });
        Receive<PaceTick>(_ => Pump());
        Receive<DigestProbed>(d =>
        {
            _probing = false;
            _probeResults.Enqueue(d.BytesPerMs);
            while (_probeResults.Count > RecentDigestProbes)
            {
                _probeResults.Dequeue();
            }

            _digestRateProbed = _probeResults.Max();
        });
        Receive<ActorIdentity>(OnPong);
    }

    /// <summary>Answers of the states after the stop: too late to change anything.</summary>
    private void LateConvergenceHandlers(string code)
    {
        Receive<SetMigrationParameters>(_ => Sender.Tell(new CommandFailed($"migration {_id} is {PhaseName}; too late to change it", code)));
        Receive<ForceSwitchover>(_ => Sender.Tell(new CommandFailed($"migration {_id} is {PhaseName}; the switchover has already happened", code)));
    }

    /// <summary>Validates the change, then applies it if the state allows (<paramref name="open"/>: before the stop).</summary>
    private void OnSetParameters(SetMigrationParameters p, bool open)
    {
        // Validate everything before changing anything.
        if (p.DowntimeLimitMs is { } limit && !(limit > 0 && double.IsFinite(limit)))
        {
            Sender.Tell(new CommandFailed($"downtime limit {limit} ms: expected a positive number of milliseconds", "bad-settings"));
            return;
        }

        if (p.MaxBandwidth is < 0)
        {
            Sender.Tell(new CommandFailed($"max bandwidth {p.MaxBandwidth} bytes/s: expected >= 0 (0 = unlimited)", "bad-settings"));
            return;
        }

        if (!open)
        {
            Sender.Tell(new CommandFailed($"migration {_id} is in phase {PhaseName}; too late to change it", "too-late"));
            return;
        }

        if (p.DowntimeLimitMs is { } l)
        {
            _downtimeLimitMs = l;
        }

        if (p.MaxBandwidth is { } bw)
        {
            _maxBandwidth = bw;
            _transfer?.Pacer.SetRate(bw);
        }

        if (p.AutoConverge is { } on)
        {
            var throttle = Policy.SetAutoConverge(on);
            _guest.Workload.SetThrottle(throttle);
            RecordThrottle(throttle);
        }

        _log.Info("migration {0}: parameters changed by operator: downtime limit {1:0} ms, max bandwidth {2} B/s, auto-converge {3}",
            _id, DowntimeLimitMs, _maxBandwidth, AutoConvergeOn ? "on" : "off");
        Sender.Tell(new MigrationParametersChanged(_id, DowntimeLimitMs, _maxBandwidth, AutoConvergeOn, PhaseName));
        Pump();
    }

    private long _maxBandwidth = -1;

    private long MaxBandwidth => _maxBandwidth >= 0 ? _maxBandwidth : _settings.MaxBandwidth;

    /// <summary>The estimate of switching over now, from this migration's and this node's measurements.</summary>
    private DowntimeEstimate CurrentEstimate()
    {
        var t = _transfer!;
        var dirty = t.DirtyBytes;
        var devices = t.DevicesLeft(out var device);

        var history = History;
        var precopyRate = _stats.TransferRateBytesPerMs(_clock.Elapsed.TotalMilliseconds - _setupMs);
        // Both are measurements of the same hash on this machine; each errs slow (a probe that lost its core, a stop
        // phase that waited for the thread pool), so the faster one is the better figure.
        var digestRate = Math.Max(history.DigestRateBytesPerMs, _digestRateProbed);
        // One control round trip: the commit round trip an earlier migration of this node measured after its stop, or
        // the ping of this one, whichever is longer (the ping is taken while the guest runs, the commit after the stop).
        var rtt = Math.Max(history.CommitRoundTripMs, _roundTripMs);
        return Estimator.Estimate(new DowntimeInputs(dirty, device, precopyRate, history.StopCopyRateBytesPerMs, _stats.LoadRateBytesPerMs(),
            _guest.Blocks.Sum(b => b.SizeBytes), digestRate, rtt,
            devices,
            // Only segments written since their last hash are hashed after the stop, on both sides.
            _segmentDigests?.BytesToHashAtStop(_guest.Blocks) ?? -1,
            _settings.ChunkSize,
            // The destination loads on min(devices, cores) threads (IncomingMigration's worker pool).
            Math.Clamp(devices.Length, 1, Environment.ProcessorCount)));
    }

    /// <summary>Every channel has sent Sync(k): ask the policy whether to switch over and how hard to throttle.</summary>
    private void DecideAtIterationEnd(double iterationMs)
    {
        var estimate = CurrentEstimate();
        _stats.LastExpectedDowntimeMs = estimate.TotalMs;
        Ping();
        ProbeDigestRate();
        var decision = Policy.OnIterationEnd(Iteration, estimate.RemainingBytes, estimate.TotalMs, DowntimeLimitMs);
        _log.Debug("migration {0}: iteration {1} took {2:0} ms; remaining {3} bytes; expected downtime {4}; throttle {5} %",
            _id, Iteration, iterationMs, estimate.RemainingBytes, estimate, decision.ThrottlePercent);
        if (decision.ThrottleChanged)
        {
            _log.Info("migration {0}: iteration {1} did not converge (expected downtime {2:0} ms > {3:0} ms): guest throttled to {4} %",
                _id, Iteration, estimate.TotalMs, DowntimeLimitMs, decision.ThrottlePercent);
            _guest.Workload.SetThrottle(decision.ThrottlePercent);
            RecordThrottle(decision.ThrottlePercent);
        }

        if (decision.Switchover)
        {
            _switchoverReason = decision.Reason;
            _switchoverEstimate = estimate;
            _forced = decision.Reason != SwitchoverReason.Converged;
            if (_forced)
            {
                _log.Info("migration {0}: switching over after {1} iterations ({2}); expected downtime {3} > limit {4:0} ms",
                    _id, Iteration, decision.Reason, estimate, DowntimeLimitMs);
            }

            BeginSwitchover();
            return;
        }

        var wait = _settings.MinIterationTime.TotalMilliseconds - iterationMs;
        if (wait > 1)
        {
            Timers.StartSingleTimer("next-iteration", NextIteration.Instance, TimeSpan.FromMilliseconds(wait));
        }
        else
        {
            BeginIteration();
        }
    }

    /// <summary>Precopy starts: the bandwidth limit applies, and the digest rate is probed off the actor thread.</summary>
    private void OnPrecopyStarting()
    {
        _transfer!.Pacer.SetRate(MaxBandwidth);
        ProbeDigestRate();
        Ping();
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
        Task.Run(() => new DigestProbed(DigestRateProbe.Measure(blocks))).PipeTo(Self);
    }

    private static readonly TimeSpan DigestProbeInterval = TimeSpan.FromMilliseconds(500);
    private const int RecentDigestProbes = 4;
    private readonly Queue<double> _probeResults = new();
    private bool _probing;
    private double _lastProbeMs = -1;

    /// <summary>The guest stops: the stop-copy phase runs at full speed; remember where its measurements start.</summary>
    private void OnGuestStopping()
    {
        _precopyWireBytes = _stats.WireBytes;
        _precopyEndMs = _clock.Elapsed.TotalMilliseconds;
        _stopWireBytes = _stats.WireBytes;
        _digestStartMs = _precopyEndMs;
        _transfer!.Pacer.Enabled = false;
    }

    private void OnSourceDigestDone()
    {
        // A small guest's digest time is mostly the Task.Run and mailbox latency around it, not hashing: not a rate.
        var bytes = _guest.Blocks.Sum(b => b.SizeBytes);
        if (bytes >= MinDigestSampleBytes)
        {
            History.RecordDigest(bytes, _clock.Elapsed.TotalMilliseconds - _digestStartMs);
        }
    }

    private const long MinDigestSampleBytes = 256L << 20;

    /// <summary>Every channel sent End: the stop-copy transfer is over; record its rate for later estimates.</summary>
    private void OnStopCopySent() =>
        History.RecordStopCopy(_stats.WireBytes - _stopWireBytes, _clock.Elapsed.TotalMilliseconds - _stopMs);

    private void OnCommitSent() => _commitSentMs = _clock.Elapsed.TotalMilliseconds;

    private void OnResumeConfirmed()
    {
        if (_commitSentMs >= 0)
        {
            History.RecordCommitRoundTrip(_clock.Elapsed.TotalMilliseconds - _commitSentMs);
        }
    }

    /// <summary>The migration ended (any status): the guest runs unthrottled (here, or on the destination, which never throttles it).</summary>
    private void LiftThrottle()
    {
        if (_policyField is { ThrottlePercent: > 0 })
        {
            _policyField.SetAutoConverge(false);
        }

        _guest.Workload.SetThrottle(0);
    }

    /// <summary>Measures the control round trip to the destination's incoming actor (Identify is answered by every actor).</summary>
    private void Ping()
    {
        if (_incoming.IsNobody() || _pingSentMs >= 0)
        {
            return;
        }

        _pingSentMs = _clock.Elapsed.TotalMilliseconds;
        _incoming.Tell(new Identify(++_pingId));
    }

    private void OnPong(ActorIdentity id)
    {
        if (_pingSentMs < 0 || id.MessageId is not long n || n != _pingId)
        {
            return;
        }

        var rtt = _clock.Elapsed.TotalMilliseconds - _pingSentMs;
        _pingSentMs = -1;
        // A longer round trip counts at once, a shorter one halfway (the stop phase meets the machine as it is loaded now).
        _roundTripMs = rtt > _roundTripMs ? rtt : (_roundTripMs + rtt) / 2;
    }

    private double PrecopyThroughputMiBps()
    {
        var end = _precopyEndMs > 0 ? _precopyEndMs : _clock.Elapsed.TotalMilliseconds;
        var bytes = _precopyEndMs > 0 ? _precopyWireBytes : _stats.WireBytes;
        var ms = end - _setupMs;
        return ms <= 0 || _setupMs <= 0 ? 0 : bytes / (1024.0 * 1024.0) / (ms / 1000.0);
    }

    private sealed record DigestProbed(double BytesPerMs) : INoSerializationVerificationNeeded;
}
