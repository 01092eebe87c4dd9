using Akka.Actor;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Metrics;
using Migration.Actors.Source;

namespace Migration.Actors.Node;

/// <summary>
/// The node's side of /metrics and of the operator's log: keeps one MigrationFigures per migration the node runs or
/// recently ran and publishes an immutable NodeMetricsSnapshot after each change it is fed (progress, traffic, ends);
/// logs at INFO when a migration starts, changes phase (as seen in its progress reports) and ends, with the reason.
/// Fed by the <see cref="HypervisorNode"/> with the events it already receives, on its thread only; the scrape thread
/// reads only the published snapshot (<see cref="NodeMetrics"/>).
/// </summary>
internal sealed class NodeMetricsFeed(ILoggingAdapter log, ActorSystem system, GuestRegistry guests, IncomingMigrations incoming,
    OutgoingMigrations outgoing, MigrationHistory history)
{
    private const int MaxEndedFigures = 100;
    private readonly Dictionary<Guid, MigrationFigures> _figures = new();
    private readonly Dictionary<Guid, string> _phases = new();
    private NodeMetrics? _metrics;

    private NodeMetrics Metrics => _metrics ??= Attach(NodeMetrics.Get(system));

    /// <summary>Gives the metrics the node's memory pool to read at each scrape (GuestMemoryPool.State is thread-safe).</summary>
    private NodeMetrics Attach(NodeMetrics metrics)
    {
        var pool = NodeMemoryPool.Get(system).Pool;
        metrics.PoolHeldBytes = () => pool.State().HeldBytes;
        return metrics;
    }

    /// <summary>A progress report of an outgoing migration.</summary>
    public void Progress(MigrationProgress p)
    {
        if (!_phases.TryGetValue(p.MigrationId, out var phase))
        {
            var to = history.TryGetStarted(p.MigrationId, out var s) ? s.Destination : "?";
            log.Info("migration {0} of guest {1} to {2} started", p.MigrationId, p.VmId, to);
        }

        if (phase != p.Phase)
        {
            _phases[p.MigrationId] = p.Phase;
            log.Info("migration {0} of guest {1}: phase {2} (iteration {3}, {4} sent)", p.MigrationId, p.VmId, p.Phase, p.Iteration,
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
        Publish();
    }

    /// <summary>An outgoing migration's coordinator reported its end.</summary>
    public void Ended(MigrationEnded e)
    {
        var r = e.Report;
        _phases.Remove(e.MigrationId);
        if (r.Status == "completed")
        {
            log.Info(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"migration {e.MigrationId} of guest {e.VmId} to {r.Destination} ended: completed, verified {r.Verified}, downtime {r.DowntimeMs:0.0} ms, {r.Iterations} iterations, {r.TotalMs:0} ms in total"));
        }
        else
        {
            log.Info("migration {0} of guest {1} to {2} ended: {3}: {4}", e.MigrationId, e.VmId, r.Destination, r.Status, r.Error ?? "no reason given");
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

        Publish();
    }

    /// <summary>Traffic of an incoming migration (ignored once it is no longer known).</summary>
    public void IncomingTraffic(IncomingTraffic t)
    {
        if (!incoming.TryGet(t.MigrationId, out var entry))
        {
            return;
        }

        if (!_figures.ContainsKey(t.MigrationId))
        {
            log.Info("incoming migration {0} of guest {1} from {2}: receiving", t.MigrationId, t.VmId, entry.Source.Path.Address);
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
        Publish();
    }

    /// <summary>An incoming migration ended: "completed" (the guest runs here) or "discarded".</summary>
    public void IncomingEnded(Guid migrationId, string result, string reason = "")
    {
        if (result != "completed")
        {
            log.Info("incoming migration {0}: {1}: {2} (the guest stays on its source)", migrationId, result, reason);
        }

        if (_figures.TryGetValue(migrationId, out var f) && f.Role == "destination")
        {
            _figures[migrationId] = f with { Active = false, DeviceBufferBytes = 0 };
        }

        Metrics.MigrationEnded("destination", result);
        Publish();
    }

    /// <summary>Builds and swaps in the snapshot (also after a change of the guests); forgets the oldest ended migrations beyond the bound.</summary>
    public void Publish()
    {
        var ended = _figures.Values.Where(f => !f.Active).ToArray();
        foreach (var old in ended.Take(Math.Max(0, ended.Length - MaxEndedFigures)))
        {
            _figures.Remove(old.MigrationId);
        }

        var capacity = guests.MemoryCapacity;
        var used = guests.MemoryUsed(); // what the capacity check counts, so used + free is what it sees
        Metrics.Publish(new NodeMetricsSnapshot
        {
            Guests = guests.Count,
            ActiveOutgoing = outgoing.Count,
            ActiveIncoming = incoming.Count,
            MemoryUsedBytes = used,
            MemoryFreeBytes = Math.Max(0, capacity - used),
            Migrations = _figures.Values.ToArray(),
        });
    }
}
