using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Infrastructure;
using Xunit.Abstractions;

namespace Migration.Actors.Tests;

/// <summary>
/// Configuration every actor spec runs with: messages are serialized on every Tell (so a message Hyperion cannot
/// carry fails here, not in production) with the same bindings as hocon/cluster.conf (Hyperion, and DeviceCredit's own format).
/// </summary>
public static class SpecConfig
{
    public const string Hocon = """
        akka.loglevel = WARNING
        akka.actor.serialize-messages = on
        akka.actor.serializers.hyperion = "Akka.Serialization.HyperionSerializer, Akka.Serialization.Hyperion"
        akka.actor.serializers.device-credit = "Migration.Actors.Messages.DeviceCreditSerializer, Migration.Actors"
        akka.actor.serialization-bindings {
          "Migration.Actors.Messages.IMigrationMessage, Migration.Actors" = hyperion
          "Migration.Actors.Messages.DeviceCredit, Migration.Actors" = device-credit
        }
        # Departed guests' RAM kept per node (NodeMemoryPool): small in specs, many of which run at once.
        migration.memory-pool.max-bytes = 256MiB
        """;

    public static Config Base { get; } = ConfigurationFactory.ParseString(Hocon);
}

/// <summary>
/// Base of the actor specs: a TestKit with <see cref="SpecConfig.Base"/> that owns the worker pools its test
/// creates (disposed after the actor system has shut down, so no loader runs on a disposed pool).
/// </summary>
public abstract class MigrationSpec : Akka.TestKit.Xunit2.TestKit
{
    private readonly List<WorkerPool> _pools = [];

    protected MigrationSpec(ITestOutputHelper output)
        : base(SpecConfig.Base, null, output)
    {
    }

    /// <summary>Generous default wait for a message the spec expects (never reached when the code works).</summary>
    protected static TimeSpan Patience => TimeSpan.FromSeconds(10);

    protected static Guid MigrationId { get; } = Guid.Parse("6d1f3c2a-0b7e-4a51-9c44-3f0e8d2b9a17");

    protected WorkerPool NewPool(int threads = 2, int capacity = 64)
    {
        var pool = new WorkerPool($"spec-load-{_pools.Count}", threads, capacity);
        _pools.Add(pool);
        return pool;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            foreach (var pool in _pools)
            {
                pool.Dispose();
            }
        }
    }
}
