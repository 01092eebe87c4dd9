using Akka.Actor;
using Migration.Devices.Ram;
using Prometheus;

namespace Migration.Actors.Metrics;

/// <summary>
/// A node's Prometheus metrics (prometheus-net): its own <see cref="CollectorRegistry"/> (several nodes share a process
/// in tests and in the demo, so never the process-global one) and, when migration.metrics.port is set, an HTTP
/// endpoint serving it at http://HOST:PORT/metrics. One per ActorSystem (an Akka extension).
/// Threading: the node actor calls <see cref="Publish"/>, <see cref="MigrationEnded"/> and <see cref="DowntimeObserved"/>;
/// the scrape thread runs <see cref="Collect"/>, which reads only the latest published snapshot (one volatile read) and
/// never asks an actor. The data path makes no metric calls: the snapshot carries counters the engine keeps anyway.
/// </summary>
public sealed class NodeMetrics : IExtension, IDisposable
{
    private static readonly string[] MigrationLabels = ["migration", "guest"];
    private readonly Counter _migrations;
    private readonly Gauge _active;
    private readonly Counter _sent;
    private readonly Counter _received;
    private readonly Gauge _dirtyPages;
    private readonly Gauge _rate;
    private readonly Histogram _downtime;
    private readonly Gauge _buffer;
    private readonly Gauge _budget;
    private readonly Counter _reconnects;
    private readonly Gauge _guests;
    private readonly Gauge _memory;
    private NodeMetricsSnapshot _snapshot = NodeMetricsSnapshot.Empty;
    private HashSet<(string Migration, string Guest, string Role)> _shown = [];
    private readonly object _collectLock = new(); // two scrapes at once must not interleave the label bookkeeping
    private MetricServer? _server;

    /// <summary>
    /// Bytes the node's memory pool holds, read on the scrape thread (so it must be thread-safe); set once by the node
    /// (NodeMetricsFeed), null for a node without one.
    /// </summary>
    public Func<long>? PoolHeldBytes { get; set; }

    public NodeMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        _migrations = f.CreateCounter("migration_migrations_total", "Migrations that ended on this node, by role and result.", "role", "result");
        _active = f.CreateGauge("migration_active", "Migrations running on this node, by role.", "role");
        _sent = f.CreateCounter("migration_bytes_sent_total",
            "Bytes a source sent: kind=ram is RAM on the wire (headers and offsets included), kind=device is device-state payload.",
            ["kind", .. MigrationLabels]);
        _received = f.CreateCounter("migration_bytes_received_total",
            "Bytes a destination received: kind=ram is guest RAM pages written (4 KiB each), kind=device is device-state payload.",
            ["kind", .. MigrationLabels]);
        _dirtyPages = f.CreateGauge("migration_dirty_pages_remaining", "Dirty 4 KiB guest pages not yet sent (source).", MigrationLabels);
        _rate = f.CreateGauge("migration_transfer_rate_bytes", "Average transfer rate since the channels connected, bytes per second (source).", MigrationLabels);
        _downtime = f.CreateHistogram("migration_downtime_seconds", "Downtime of completed migrations (guest paused until it runs on the destination).",
            new HistogramConfiguration { Buckets = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10] });
        _buffer = f.CreateGauge("migration_device_buffer_bytes", "Device-state bytes the destination holds in its reorder gates.", ["role", .. MigrationLabels]);
        _budget = f.CreateGauge("migration_device_buffer_budget_bytes", "The destination's device buffer budget of the migration.", ["role", .. MigrationLabels]);
        _reconnects = f.CreateCounter("migration_channel_reconnects_total", "Channel connections lost before the stop and reconnected (source).", MigrationLabels);
        _guests = f.CreateGauge("migration_node_guests", "Guests this node owns.");
        _memory = f.CreateGauge("migration_node_memory_bytes", "Guest memory of this node: used (as the capacity check counts it: its guests, guests being created, incoming ones, handed-over copies not freed yet), free (capacity minus used), pool (touched memory the node's pool holds for incoming guests, ready or in quarantine; 0 without a pool).", "state");
        foreach (var role in new[] { "source", "destination" })
        {
            _active.WithLabels(role).Set(0);
        }

        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>The port the endpoint listens on, or 0 when it is off.</summary>
    public int Port { get; private set; }

    public static NodeMetrics Get(ActorSystem system) => system.WithExtension<NodeMetrics, NodeMetricsExtension>();

    /// <summary>The node actor's latest view; replaces the previous one atomically.</summary>
    public void Publish(NodeMetricsSnapshot snapshot) => Volatile.Write(ref _snapshot, snapshot);

    public NodeMetricsSnapshot Current => Volatile.Read(ref _snapshot);

    /// <summary>A migration ended on this node (role "source" or "destination"; result e.g. completed, failed, cancelled).</summary>
    public void MigrationEnded(string role, string result) => _migrations.WithLabels(role, result).Inc();

    public void DowntimeObserved(TimeSpan downtime) => _downtime.Observe(downtime.TotalSeconds);

    /// <summary>Serves the registry at http://host:port/metrics (HttpListener, no ASP.NET). Idempotent per node.</summary>
    public void StartServer(string host, int port)
    {
        if (_server is not null)
        {
            return;
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(port);
        _server = new MetricServer(host, port, "metrics/", Registry);
        _server.Start();
        Port = port;
    }

    /// <summary>Runs on the scrape thread: copies the latest snapshot into the families.</summary>
    private void Collect()
    {
        lock (_collectLock)
        {
            CollectLocked();
        }
    }

    private void CollectLocked()
    {
        var s = Current;
        _guests.Set(s.Guests);
        _active.WithLabels("source").Set(s.ActiveOutgoing);
        _active.WithLabels("destination").Set(s.ActiveIncoming);
        _memory.WithLabels("used").Set(s.MemoryUsedBytes);
        _memory.WithLabels("free").Set(s.MemoryFreeBytes);
        // Read live: the pool changes without a node event (a background populate, a trim); its State takes the pool's lock.
        _memory.WithLabels("pool").Set(PoolHeldBytes?.Invoke() ?? 0);
        var shown = new HashSet<(string, string, string)>();
        foreach (var m in s.Migrations)
        {
            var id = m.MigrationId.ToString();
            shown.Add((id, m.Guest, m.Role));
            if (m.Role == "source")
            {
                _sent.WithLabels("ram", id, m.Guest).IncTo(m.RamBytesSent);
                _sent.WithLabels("device", id, m.Guest).IncTo(m.DeviceBytesSent);
                _reconnects.WithLabels(id, m.Guest).IncTo(m.ChannelReconnects);
            }
            else
            {
                _received.WithLabels("ram", id, m.Guest).IncTo(m.RamBytesReceived);
                _received.WithLabels("device", id, m.Guest).IncTo(m.DeviceBytesReceived);
            }

            if (m.Active)
            {
                if (m.Role == "source")
                {
                    _dirtyPages.WithLabels(id, m.Guest).Set(m.RemainingDirtyBytes / RamBlock.PageSize);
                    _rate.WithLabels(id, m.Guest).Set(m.TransferRateBytesPerSecond);
                }

                _buffer.WithLabels(m.Role, id, m.Guest).Set(m.DeviceBufferBytes);
                _budget.WithLabels(m.Role, id, m.Guest).Set(m.DeviceBufferBudgetBytes);
            }
            else
            {
                RemoveLive(id, m.Guest, m.Role);
            }
        }

        // Series of migrations that left the node's history go away with them.
        foreach (var (id, guest, role) in _shown.Where(x => !shown.Contains(x)))
        {
            RemoveLive(id, guest, role);
            if (role == "source")
            {
                _sent.RemoveLabelled("ram", id, guest);
                _sent.RemoveLabelled("device", id, guest);
                _reconnects.RemoveLabelled(id, guest);
            }
            else
            {
                _received.RemoveLabelled("ram", id, guest);
                _received.RemoveLabelled("device", id, guest);
            }
        }

        _shown = shown;
    }

    /// <summary>Gauges that describe a running migration disappear when it ends (its counters stay).</summary>
    private void RemoveLive(string id, string guest, string role)
    {
        if (role == "source")
        {
            _dirtyPages.RemoveLabelled(id, guest);
            _rate.RemoveLabelled(id, guest);
        }

        _buffer.RemoveLabelled(role, id, guest);
        _budget.RemoveLabelled(role, id, guest);
    }

    public void Dispose()
    {
        _server?.Stop();
        _server = null;
    }
}

/// <summary>Creates the one <see cref="NodeMetrics"/> of an ActorSystem; it stops its endpoint when the system terminates.</summary>
public sealed class NodeMetricsExtension : ExtensionIdProvider<NodeMetrics>
{
    public override NodeMetrics CreateExtension(ExtendedActorSystem system)
    {
        var metrics = new NodeMetrics();
        system.RegisterOnTermination(metrics.Dispose);
        return metrics;
    }
}
