namespace Migration.Actors.Source;

/// <summary>
/// The figures of the moment of a source migration (<see cref="SourceNow"/>), handed to <see cref="SourceReporting"/>
/// for progress (every progress tick and at the end) and for the timeline's samples. Reads the run, the transfer
/// engine and the convergence's estimate; keeps nothing.
/// Threading: owned by the MigrationCoordinator and called only on its thread.
/// </summary>
internal sealed class SourceProgress
{
    private readonly SourceRun _run;
    private readonly SourceConvergence _convergence;
    private readonly SourceReporting _reporting;

    public SourceProgress(SourceRun run, SourceConvergence convergence, SourceReporting reporting)
    {
        _run = run;
        _convergence = convergence;
        _reporting = reporting;
    }

    /// <summary>The figures of the moment for progress, the timeline and the report.</summary>
    public SourceNow Now() => new(_run.PhaseName, _run.Phase == SourcePhase.Ended, _run.Phase == SourcePhase.Ended && _run.EndStatus == "completed",
        (int)_run.Iteration, _run.SetupMs, _run.Ack?.DeviceBufferBudget ?? _run.Settings.DeviceBufferBudget, _convergence.ThrottlePercent,
        _run.Transfer?.Recovery.Reconnects ?? 0);

    /// <summary>Publishes progress to the subscribers (with the current estimate in the phases that send RAM).</summary>
    public void Publish()
    {
        long remaining = 0;
        var expected = _run.Stats.LastExpectedDowntimeMs;
        if (_run.Transfer is not null && _run.Phase.SendsRam())
        {
            var e = _convergence.Estimate(_run.Transfer, _run.SegmentDigests, _run.SetupMs);
            remaining = e.RemainingBytes;
            expected = e.TotalMs;
        }

        _reporting.Publish(Now(), remaining, expected, RemainingDirtyBytes());
    }

    /// <summary>Dirty guest RAM not yet sent, in bytes; 0 outside the phases that send RAM.</summary>
    public long RemainingDirtyBytes() => _run.Transfer is not null && _run.Phase.SendsRam() ? _run.Transfer.DirtyBytes : 0;

    /// <summary>Samples the transfer now (every progress tick; forced at the stop and at the end so they are never thinned out).</summary>
    public void RecordTimelineSample(long remainingDirtyBytes, bool force = false) => _reporting.Sample(Now(), remainingDirtyBytes, force);
}
