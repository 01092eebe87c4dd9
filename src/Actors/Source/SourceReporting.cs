using System.Diagnostics;
using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Reporting;
using Migration.Actors.Settings;
using Migration.Actors.Source.Convergence;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;

namespace Migration.Actors.Source;

/// <summary>
/// What a source migration tells the outside: progress to its subscribers (every progress tick and at the end), the
/// timeline (report fields `timeline` and `timelineEvents`, kept and bounded by <see cref="TimelineRecorder"/>), and the
/// final report. The coordinator hands it the figures of the moment (<see cref="SourceNow"/>); it keeps only what it
/// publishes. Threading: a plain object owned by the MigrationCoordinator and called only on that actor's thread.
/// </summary>
internal sealed class SourceReporting
{
    private readonly Guid _id;
    private readonly GuestVm _guest;
    private readonly MigrationSettings _settings;
    private readonly MigrationStats _stats;
    private readonly Stopwatch _clock;
    private readonly List<IActorRef> _subscribers = [];
    private readonly ProgressTracker _progressTracker = new();
    private MigrationProgress? _lastProgress;

    public SourceReporting(Guid id, GuestVm guest, MigrationSettings settings, MigrationStats stats, Stopwatch clock)
    {
        _id = id;
        _guest = guest;
        _settings = settings;
        _stats = stats;
        _clock = clock;
    }

    public TimelineRecorder Timeline { get; } = new();

    /// <summary>Who gets progress and MigrationFinished.</summary>
    public IReadOnlyList<IActorRef> Subscribers => _subscribers;

    /// <summary>A new subscriber gets the latest progress at once.</summary>
    public void Subscribe(IActorRef subscriber)
    {
        _subscribers.Add(subscriber);
        if (_lastProgress is not null)
        {
            subscriber.Tell(_lastProgress);
        }
    }

    /// <summary>
    /// Publishes progress to every subscriber and samples the timeline. <paramref name="remaining"/> and
    /// <paramref name="expectedDowntimeMs"/> are the current estimate (0 and the last expected downtime outside the
    /// phases that send RAM); <paramref name="remainingDirtyBytes"/> is the dirty RAM not yet sent (0 outside them).
    /// </summary>
    public void Publish(in SourceNow now, long remaining, double expectedDowntimeMs, long remainingDirtyBytes)
    {
        var sent = _stats.WireBytes;
        var elapsed = _clock.Elapsed.TotalMilliseconds;
        var bytesPerMs = now.SetupMs > 0 ? _stats.TransferRateBytesPerMs(elapsed - now.SetupMs) : 0;
        var figures = _progressTracker.Next(sent, remaining, bytesPerMs, expectedDowntimeMs, ended: now.Ended, completed: now.Completed);
        var rate = bytesPerMs * 1000 / (1 << 20);
        _lastProgress = new MigrationProgress(
            _id, _guest.Id, now.Phase, now.Iteration, sent, _stats.RamWireBytes, _stats.DeviceBytes, rate,
            remaining, expectedDowntimeMs, _stats.DestinationBufferedBytes, now.DeviceBufferBudget,
            figures.Percent, elapsed, figures.EtaMs, now.ThrottlePercent)
        {
            RemainingDirtyBytes = remainingDirtyBytes,
            ChannelReconnects = now.Reconnects,
        };
        Sample(now, _lastProgress.RemainingDirtyBytes);
        foreach (var s in _subscribers)
        {
            s.Tell(_lastProgress);
        }
    }

    /// <summary>Samples the transfer now (every progress tick; forced at the stop and at the end so they are never thinned out).</summary>
    public void Sample(in SourceNow now, long remainingDirtyBytes, bool force = false) => Timeline.Sample(
        _clock.Elapsed.TotalMilliseconds, now.Phase, now.Iteration, _stats.RamWireBytes, _stats.DeviceBytes, remainingDirtyBytes,
        _stats.DestinationBufferedBytes, now.DeviceBufferBudget, force);

    /// <summary>The final report of the migration (status completed, failed or cancelled).</summary>
    public MigrationReport Report(in SourceNow now, SourceOutcome o)
    {
        var total = _clock.Elapsed.TotalMilliseconds;
        var incoming = _stats.Incoming;
        var devices = _guest.Devices.Select((d, i) =>
        {
            var saved = i < o.Saved.Length ? o.Saved[i] : null;
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

        var ramMatch = incoming is not null && o.RamDigests is not null && incoming.RamDigests.SequenceEqual(o.RamDigests);
        var transferMs = Math.Max(1, total - now.SetupMs);
        return new MigrationReport
        {
            MigrationId = _id,
            VmId = _guest.Id,
            Source = o.SourceNode,
            Destination = o.DestinationNode,
            Status = o.Status,
            Verified = (o.Status is "completed" or "handed-over") && ramMatch && devices.All(d => d.DigestMatch),
            Channels = _settings.Channels,
            Codec = RamCodecRegistry.Name(_settings.Codec),
            TotalMs = total,
            SetupMs = now.SetupMs,
            DowntimeMs = o.DowntimeMs,
            Iterations = now.Iteration,
            ForcedSwitchover = o.Forced,
            SwitchoverReason = o.SwitchoverReason,
            ExpectedDowntimeMs = o.SwitchoverEstimate?.TotalMs ?? 0,
            ExpectedDowntimeTerms = o.SwitchoverEstimate?.ToString(),
            MaxThrottlePercent = o.MaxThrottlePercent,
            PrecopyThroughputMiBps = o.PrecopyThroughputMiBps,
            MaxBandwidth = o.MaxBandwidth,
            RamBytes = _guest.Blocks.Sum(b => b.SizeBytes),
            RamTransferredBytes = _stats.NormalPages * RamBlock.PageSize,
            NormalPages = _stats.NormalPages,
            ZeroPages = _stats.ZeroPages,
            UncompressedPages = _stats.UncompressedPages,
            DeviceStateBytes = _stats.DeviceBytes,
            WireBytes = _stats.WireBytes,
            ThroughputMiBps = _stats.WireBytes / (1024.0 * 1024.0) / (transferMs / 1000.0),
            DeviceBufferBudgetBytes = now.DeviceBufferBudget,
            PeakDeviceBufferBytes = incoming?.PeakDeviceBufferBytes ?? 0,
            OutOfOrderChunks = incoming?.OutOfOrderChunks ?? 0,
            ChannelReconnects = now.Reconnects,
            ResentPages = o.ResentPages,
            ResentDeviceChunks = o.ResentChunks,
            DowntimeLimitMs = _settings.DowntimeLimit.TotalMilliseconds,
            DestinationAllocatedBytes = incoming?.AllocatedBytes,
            DestinationSteadyAllocMiBPerGiB = incoming?.SteadyAllocMiBPerGiB,
            Error = o.Error,
            Devices = devices,
            RamWireBytes = _stats.RamWireBytes,
            Timeline = Timeline.Samples.ToArray(),
            TimelineEvents = Timeline.Events.ToArray(),
        };
    }
}

/// <summary>
/// The coordinator's figures of the moment, for progress, the timeline and the report (cheap to take: no scan).
/// <see cref="Phase"/> is the state's user-visible name.
/// </summary>
internal readonly record struct SourceNow(
    string Phase, bool Ended, bool Completed, int Iteration, double SetupMs, long DeviceBufferBudget, int ThrottlePercent, int Reconnects);

/// <summary>How the migration ended, and the figures only the final report carries.</summary>
internal sealed record SourceOutcome(
    string Status, string? Error, double DowntimeMs, string SourceNode, string DestinationNode, DeviceSaved?[] Saved, string[]? RamDigests,
    bool Forced, string? SwitchoverReason, DowntimeEstimate? SwitchoverEstimate, int MaxThrottlePercent, double PrecopyThroughputMiBps,
    long MaxBandwidth, long ResentPages, long ResentChunks);
