using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Devices.Device;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;

namespace Migration.Actors.Source;

// Progress and the final report of the coordinator.
public sealed partial class MigrationCoordinator
{
    private double _percent;

    private void PublishProgress()
    {
        long remaining = 0;
        double expected = _stats.LastExpectedDowntimeMs;
        if (_transfer is not null && _phase.SendsRam())
        {
            var e = Estimate();
            remaining = e.RemainingBytes;
            expected = e.DowntimeMs;
        }

        var sent = _stats.WireBytes;
        var elapsed = _clock.Elapsed.TotalMilliseconds;
        var bytesPerMs = _setupMs > 0 ? _stats.TransferRateBytesPerMs(elapsed - _setupMs) : 0;
        var figures = _progressTracker.Next(sent, remaining, bytesPerMs, expected,
            ended: _phase == SourcePhase.Ended, completed: _phase == SourcePhase.Ended && _endStatus == "completed");
        _percent = figures.Percent;
        var rate = bytesPerMs * 1000 / (1 << 20);
        _lastProgress = new MigrationProgress(
            _id, _guest.Id, PhaseName, (int)Iteration, sent, _stats.RamWireBytes, _stats.DeviceBytes, rate,
            remaining, expected, _stats.DestinationBufferedBytes, _ack?.DeviceBufferBudget ?? _settings.DeviceBufferBudget,
            _percent, elapsed, figures.EtaMs, ThrottlePercent)
        {
            RemainingDirtyBytes = RemainingDirtyBytes(),
            ChannelReconnects = _transfer?.Recovery.Reconnects ?? 0,
        };
        RecordTimelineSample(_lastProgress.RemainingDirtyBytes);
        foreach (var s in _subscribers)
        {
            s.Tell(_lastProgress);
        }
    }

    private MigrationReport BuildReport(string status, string? error, double downtimeMs)
    {
        var total = _clock.Elapsed.TotalMilliseconds;
        var incoming = _stats.Incoming;
        var devices = _guest.Devices.Select((d, i) =>
        {
            var saved = i < _saved.Length ? _saved[i] : null;
            var inc = incoming?.Devices.FirstOrDefault(x => x.Id == d.Identity.Id);
            var destDigest = incoming is not null && i < incoming.DeviceDigests.Count ? incoming.DeviceDigests[i] : null;
            return new DeviceReport
            {
                Id = d.Identity.Id,
                Kind = d.Identity.Kind == DeviceKind.Vfio ? "vfio" : "vmstate",
                StateBytes = saved?.Bytes ?? d.StateSizeBytes,
                PrecopyBytes = saved?.PrecopyBytes ?? 0,
                Chunks = saved?.Chunks ?? 0,
                OutOfOrderChunks = inc?.OutOfOrderChunks ?? 0,
                PeakBufferedBytes = inc?.PeakBufferedBytes ?? 0,
                DigestMatch = saved is not null && destDigest is not null && destDigest == saved.Digest,
            };
        }).ToArray();

        var ramMatch = incoming is not null && _ramDigests is not null && incoming.RamDigests.SequenceEqual(_ramDigests);
        var transferMs = Math.Max(1, total - _setupMs);
        return new MigrationReport
        {
            MigrationId = _id,
            VmId = _guest.Id,
            Source = _sourceNode,
            Destination = _destinationNode,
            Status = status,
            Verified = (status is "completed" or "handed-over") && ramMatch && devices.All(d => d.DigestMatch),
            Channels = _settings.Channels,
            Codec = RamCodecRegistry.Name(_settings.Codec),
            TotalMs = total,
            SetupMs = _setupMs,
            DowntimeMs = downtimeMs,
            Iterations = (int)Iteration,
            ForcedSwitchover = _forced,
            SwitchoverReason = _switchoverReason,
            ExpectedDowntimeMs = _switchoverEstimate?.TotalMs ?? 0,
            ExpectedDowntimeTerms = _switchoverEstimate?.ToString(),
            MaxThrottlePercent = _policyField?.MaxThrottlePercent ?? 0,
            PrecopyThroughputMiBps = PrecopyThroughputMiBps(),
            MaxBandwidth = MaxBandwidth,
            RamBytes = _guest.Blocks.Sum(b => b.SizeBytes),
            RamTransferredBytes = _stats.NormalPages * RamBlock.PageSize,
            NormalPages = _stats.NormalPages,
            ZeroPages = _stats.ZeroPages,
            DeviceStateBytes = _stats.DeviceBytes,
            WireBytes = _stats.WireBytes,
            ThroughputMiBps = _stats.WireBytes / (1024.0 * 1024.0) / (transferMs / 1000.0),
            DeviceBufferBudgetBytes = _ack?.DeviceBufferBudget ?? _settings.DeviceBufferBudget,
            PeakDeviceBufferBytes = incoming?.PeakDeviceBufferBytes ?? 0,
            OutOfOrderChunks = incoming?.OutOfOrderChunks ?? 0,
            ChannelReconnects = _transfer?.Recovery.Reconnects ?? 0,
            ResentPages = _transfer?.Recovery.ResentPages ?? 0,
            ResentDeviceChunks = _transfer?.Recovery.ResentChunks ?? 0,
            DowntimeLimitMs = _settings.DowntimeLimit.TotalMilliseconds,
            DestinationAllocatedBytes = incoming?.AllocatedBytes,
            DestinationSteadyAllocMiBPerGiB = incoming?.SteadyAllocMiBPerGiB,
            Error = error,
            Devices = devices,
            RamWireBytes = _stats.RamWireBytes,
            Timeline = _timeline.Samples.ToArray(),
            TimelineEvents = _timeline.Events.ToArray(),
        };
    }
}
