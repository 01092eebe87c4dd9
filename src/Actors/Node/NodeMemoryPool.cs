using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Ram;

namespace Migration.Actors.Node;

/// <summary>
/// The node's pool of touched guest memory (<see cref="GuestMemoryPool"/>), one per actor system, read once from
/// `migration.memory-pool` (hocon/migration.conf). The node returns the RAM of guests that left (handed over, or an
/// incoming migration discarded) to it; an incoming migration builds its guest over it. Created on first use;
/// if `populate` is set, it fills that much in the background at once (the node's own pre-touched memory);
/// released when the actor system terminates.
/// </summary>
public sealed class NodeMemoryPool : IExtension
{
    public NodeMemoryPool(ExtendedActorSystem system)
    {
        Settings = MemoryPoolSettings.FromConfig(system.Settings.Config);
        var capacity = MigrationSettings.FromConfig(system.Settings.Config).NodeMemoryCapacity;
        var bound = Settings.MaxBytes > 0 ? Settings.MaxBytes : capacity > 0 ? capacity : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        Pool = new GuestMemoryPool(Settings.Enabled && GuestMemoryPool.Supported ? bound : 0, Settings.Quarantine);
        system.RegisterOnTermination(Pool.Dispose);
        if (Pool.MaxBytes > 0 && Settings.PopulateBytes > 0)
        {
            var log = Akka.Event.Logging.GetLogger(system, typeof(NodeMemoryPool));
            var pool = Pool;
            var bytes = Settings.PopulateBytes;
            Task.Factory.StartNew(() =>
            {
                var started = System.Diagnostics.Stopwatch.StartNew();
                var added = pool.Populate(bytes);
                log.Info("memory pool: populated {0} of guest memory in {1:0} ms", ByteSize.Format(added), started.Elapsed.TotalMilliseconds);
            }, TaskCreationOptions.LongRunning);
        }
    }

    public MemoryPoolSettings Settings { get; }

    public GuestMemoryPool Pool { get; }

    public MemoryPoolInfo Info()
    {
        var s = Pool.State();
        return new MemoryPoolInfo(s.HeldBytes, s.ReadyBytes, s.MaxBytes, s.ReusedBytes, s.PopulatedBytes);
    }

    public static NodeMemoryPool Get(ActorSystem system) => system.WithExtension<NodeMemoryPool, NodeMemoryPoolProvider>();
}

public sealed class NodeMemoryPoolProvider : ExtensionIdProvider<NodeMemoryPool>
{
    public override NodeMemoryPool CreateExtension(ExtendedActorSystem system) => new(system);
}

/// <summary>`migration.memory-pool`: on/off, bound (0 = the node's memory capacity), quarantine of returned memory, bytes to populate at start.</summary>
public sealed record MemoryPoolSettings(bool Enabled, long MaxBytes, TimeSpan Quarantine, long PopulateBytes)
{
    public static readonly MemoryPoolSettings Default = new(true, 0, TimeSpan.FromSeconds(10), 0);

    public static MemoryPoolSettings FromConfig(Config config)
    {
        var c = config.GetConfig("migration.memory-pool");
        if (c is null || c.IsEmpty)
        {
            return Default;
        }

        var s = new MemoryPoolSettings(
            c.GetBoolean("enabled", Default.Enabled),
            Size(c, "max-bytes", Default.MaxBytes),
            c.GetTimeSpan("quarantine", Default.Quarantine),
            Size(c, "populate", Default.PopulateBytes));
        if (s.MaxBytes < 0 || s.PopulateBytes < 0 || s.Quarantine < TimeSpan.Zero)
        {
            throw new ConfigurationException($"migration.memory-pool: max-bytes {s.MaxBytes}, populate {s.PopulateBytes} and quarantine {s.Quarantine} must not be negative");
        }

        return s;
    }

    private static long Size(Config c, string key, long fallback)
    {
        var text = c.GetString(key, null);
        if (text is null)
        {
            return fallback;
        }

        return ByteSize.TryParse(text, out var v, out var error) ? v : throw new ConfigurationException($"migration.memory-pool.{key}: {error}");
    }
}
