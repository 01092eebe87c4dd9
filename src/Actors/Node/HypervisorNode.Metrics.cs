using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Metrics;
using Migration.Actors.Source;

namespace Migration.Actors.Node;

// The node's side of /metrics and of the operator's log: it keeps one MigrationFigures per migration it runs or recently
// ran and publishes an immutable NodeMetricsSnapshot after each change it already receives (progress, traffic, ends);
// it logs at INFO when a migration starts, changes phase (as seen in its progress reports) and ends, with the reason.
// Node thread only; the scrape thread reads the published snapshot (NodeMetrics).
public sealed partial class HypervisorNode
{
    private const int MaxEndedFigures = 100;
    private readonly Dictionary<Guid, MigrationFigures> _figures = new();
    private readonly Dictionary<Guid, string> _phases = new();
    private NodeMetrics? _metrics;

    private NodeMetrics Metrics => _metrics ??= NodeMetrics.Get(Context.System);

    private void OnProgressForMetrics(MigrationProgress p)
    {
        if (!_phases.TryGetValue(p.MigrationId, out var phase))
        {
            var to = _started.TryGetValue(p.MigrationId, out var s) ? s.Destination : "?";
            _log.Info("migration {0} of guest {1} to {2} started", p.MigrationId, p.VmId, to);
        }

        if (phase != p.Phase)
        {
            _phases[p.MigrationId] = p.Phase;
            _log.Info("migration {0} of guest {1}: phase {2} (iteration {3}, {4} sent)", p.MigrationId, p.VmId, p.Phase, p.Iteration,
                Settings.ByteSize.Format(p.BytesSent));
        }

        _figures[p.MigrationId] = new MigrationFigures
        {
            MigrationId = p.MigrationId,
            Guest = p.VmId,
            Role = "source",
            Active = true,
            RamBytesSent = p.RamBytesSent,
            DeviceBytesSent = p.DeviceBytesSent,
            RemainingDirtyBytes = p.RemainingDirtyBytes,
            TransferRateBytesPerSecond = p.RateMiBps * (1 << 20),
            DeviceBufferBytes = p.BufferedDeviceBytes,
            DeviceBufferBudgetBytes = p.DeviceBufferBudgetBytes,
            ChannelReconnects = p.ChannelReconnects,
        };
        PublishMetrics();
    }

    private void OnEndedForMetrics(MigrationEnded e)
    {
        var r = e.Report;
        _phases.Remove(e.MigrationId);
        if (r.Status == "completed")
        {
            _log.Info(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"migration {e.MigrationId} of guest {e.VmId} to {r.Destination} ended: completed, verified {r.Verified}, downtime {r.DowntimeMs:0.0} ms, {r.Iterations} iterations, {r.TotalMs:0} ms in total"));
        }
        else
        {
            _log.Info("migration {0} of guest {1} to {2} ended: {3}: {4}", e.MigrationId, e.VmId, r.Destination, r.Status, r.Error ?? "no reason given");
        }

        _figures[e.MigrationId] = new MigrationFigures
        {
            MigrationId = e.MigrationId,
            Guest = e.VmId,
            Role = "source",
            Active = false,
            RamBytesSent = r.RamWireBytes,
            DeviceBytesSent = r.DeviceStateBytes,
            DeviceBufferBudgetBytes = r.DeviceBufferBudgetBytes,
            ChannelReconnects = r.ChannelReconnects,
        };
        Metrics.MigrationEnded("source", r.Status);
        if (r.Status == "completed")
        {
            Metrics.DowntimeObserved(TimeSpan.FromMilliseconds(r.DowntimeMs));
        }

        PublishMetrics();
    }

    private void OnIncomingTraffic(IncomingTraffic t)
    {
        if (!_incoming.TryGetValue(t.MigrationId, out var incoming))
        {
            return;
        }

        if (!_figures.ContainsKey(t.MigrationId))
        {
            _log.Info("incoming migration {0} of guest {1} from {2}: receiving", t.MigrationId, t.VmId, incoming.Source.Path.Address);
        }

        _figures[t.MigrationId] = new MigrationFigures
        {
            MigrationId = t.MigrationId,
            Guest = t.VmId,
            Role = "destination",
            Active = true,
            RamBytesReceived = t.RamBytes,
            DeviceBytesReceived = t.DeviceBytes,
            DeviceBufferBytes = t.DeviceBufferBytes,
            DeviceBufferBudgetBytes = t.DeviceBufferBudgetBytes,
        };
        PublishMetrics();
    }

    /// <summary>An incoming migration ended: "completed" (the guest runs here) or "discarded".</summary>
    private void OnIncomingEndedForMetrics(Guid migrationId, string result, string reason = "")
    {
        if (result != "completed")
        {
            _log.Info("incoming migration {0}: {1}: {2} (the guest stays on its source)", migrationId, result, reason);
        }

        if (_figures.TryGetValue(migrationId, out var f) && f.Role == "destination")
        {
            _figures[migrationId] = f with { Active = false, DeviceBufferBytes = 0 };
        }

        Metrics.MigrationEnded("destination", result);
        PublishMetrics();
    }

    /// <summary>Builds and swaps in the snapshot; forgets the oldest ended migrations beyond the bound.</summary>
    private void PublishMetrics()
    {
        var ended = _figures.Values.Where(f => !f.Active).ToArray();
        foreach (var old in ended.Take(Math.Max(0, ended.Length - MaxEndedFigures)))
        {
            _figures.Remove(old.MigrationId);
        }

        var capacity = _defaults.NodeMemoryCapacity > 0 ? _defaults.NodeMemoryCapacity : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var used = _guests.Values.Sum(g => g.Guest.Spec.RamBytes) + _incoming.Values.Sum(i => i.RamBytes);
        Metrics.Publish(new NodeMetricsSnapshot
        {
            Guests = _guests.Count,
            ActiveOutgoing = _outgoing.Count,
            ActiveIncoming = _incoming.Count,
            MemoryUsedBytes = used,
            MemoryFreeBytes = Math.Max(0, capacity - used),
            MemoryPoolBytes = 0,
            Migrations = _figures.Values.ToArray(),
        });
    }
}
