using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Metrics;
using Migration.Actors.Source;

namespace Migration.Actors.Node;

// The node's side of /metrics: it keeps one MigrationFigures per migration it runs or recently ran and publishes an
// immutable NodeMetricsSnapshot after each change it already receives (progress, traffic, ends). Node thread only;
// the scrape thread reads the published snapshot (NodeMetrics).
public sealed partial class HypervisorNode
{
    private const int MaxEndedFigures = 100;
    private readonly Dictionary<Guid, MigrationFigures> _figures = new();
    private NodeMetrics? _metrics;

    private NodeMetrics Metrics => _metrics ??= NodeMetrics.Get(Context.System);

    private void OnProgressForMetrics(MigrationProgress p)
    {
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
        if (!_incoming.ContainsKey(t.MigrationId))
        {
            return;
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
    private void OnIncomingEndedForMetrics(Guid migrationId, string result)
    {
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
