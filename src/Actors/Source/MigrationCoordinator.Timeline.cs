using Migration.Actors.Messages;
using Migration.Actors.Reporting;
using Migration.Devices.Ram;

namespace Migration.Actors.Source;

// The migration's timeline (report fields `timeline` and `timelineEvents`): the coordinator calls these few methods at
// its progress ticks and phase changes; TimelineRecorder keeps and bounds the series. Coordinator thread only.
public sealed partial class MigrationCoordinator
{
    private readonly TimelineRecorder _timeline = new();

    /// <summary>Dirty guest RAM not yet sent, in bytes; 0 outside the phases that send RAM.</summary>
    private long RemainingDirtyBytes() =>
        _transfer is not null && _phase.SendsRam() ? _transfer.DirtyBytes : 0;

    /// <summary>Samples the transfer now (every progress tick; forced at the stop and at the end so they are never thinned out).</summary>
    private void RecordTimelineSample(long remainingDirtyBytes, bool force = false) => _timeline.Sample(
        _clock.Elapsed.TotalMilliseconds, PhaseName, (int)Iteration, _stats.RamWireBytes, _stats.DeviceBytes, remainingDirtyBytes,
        _stats.DestinationBufferedBytes, _ack?.DeviceBufferBudget ?? _settings.DeviceBufferBudget, force);

    /// <summary>Auto-converge reports each throttle step here (percent of guest CPU taken away; 0 = released).</summary>
    private void RecordThrottle(int percent) => _timeline.Throttled(_clock.Elapsed.TotalMilliseconds, percent);
}
