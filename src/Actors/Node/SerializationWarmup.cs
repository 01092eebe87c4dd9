using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>
/// Serializes one sample of every control-plane message. Hyperion generates its serializer code per type on first
/// use (0.1-0.8 s here, see shared/AKKA-NOTES.md); without this the first DestinationVerified and CommitMigration of
/// a node's first migration paid it inside the guest's downtime. It also proves that every message round-trips
/// through the configured serializer.
/// <para>
/// Akka replaces <c>ActorSystem.Serialization</c>, and with it Hyperion's cache of generated code, each time an
/// extension injects its reference configuration (<c>Settings.InjectTopLevelFallback</c> -> <c>ReloadSerialization</c>:
/// Akka.DistributedData, Akka.Cluster.Tools, loaded lazily by the node's actors after the system started). A warm-up
/// at system start was therefore lost: every demo paid 80-100 ms of code generation for DestinationVerified (once
/// to serialize on the destination, once to deserialize on the source) inside the downtime. So
/// <see cref="EnsureWarm"/> remembers which Serialization instance it warmed and warms again when the system's is
/// another one; the node calls it at start, when its member is Up, and before each migration it starts or receives
/// (a reference compare when nothing was reloaded). Thread-safe.
/// </para>
/// </summary>
public static class SerializationWarmup
{
    private static readonly ConditionalWeakTable<ActorSystem, Akka.Serialization.Serialization> Warmed = new();

    /// <summary>True if the system's current Serialization instance is the one warmed last.</summary>
    public static bool IsWarm(ActorSystem system) => Warmed.TryGetValue(system, out var warmed) && ReferenceEquals(warmed, system.Serialization);

    /// <summary>
    /// Before a migration starts or is received: the control-plane messages of its downtime must not pay Hyperion's
    /// code generation (lost whenever an extension made Akka reload the system's Serialization). Logs when it had to.
    /// </summary>
    public static void WarmBeforeMigration(ActorSystem system, IActorRef anyRef, ILoggingAdapter log)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        if (EnsureWarm(system, anyRef))
        {
            log.Info("control-plane serialization warmed again before a migration ({0:0} ms): Akka had reloaded it", sw.Elapsed.TotalMilliseconds);
        }
    }

    /// <summary>Warms the system's current Serialization unless it is already; returns true if it had to (a reload or the first call).</summary>
    public static bool EnsureWarm(ActorSystem system, IActorRef anyRef)
    {
        var current = system.Serialization;
        if (Warmed.TryGetValue(system, out var warmed) && ReferenceEquals(warmed, current))
        {
            return false;
        }

        Run(current, anyRef);
        Warmed.AddOrUpdate(system, current);
        return true;
    }

    private static void Run(Akka.Serialization.Serialization serialization, IActorRef anyRef)
    {
        var id = Guid.NewGuid();
        var spec = new GuestSpec("warmup", 4096, new[] { new DeviceSpec("d", DeviceKind.Vfio, 0, 4096, 0), new DeviceSpec("s", DeviceKind.Structured) });
        var stats = new IncomingStats(1, 2, 3, new[] { new DeviceIncomingStats("d", 1, 2, 3, 4, 5) }, new[] { "a" }, new[] { "b" }, 6, 7);
        object[] samples =
        [
            new PrepareIncoming(id, spec, MigrationParameters.From(new MigrationSettings { Inject = [new FaultInjection(FaultInjection.SlowLoad, "load", 0, "d", 1)] }), anyRef),
            new PrepareAck(id, "127.0.0.1", 1, new byte[32], 1, anyRef),
            new PrepareRefused(id, "x"),
            new DeviceCredit(id, 0, 1, 1, 1, 1),
            new IterationReceived(id, 1),
            new ChannelResume(id, 0, 1, 1, new[] { new DeviceReceipt(1, new[] { 3L }) }),
            new SourceDigests(id, new[] { "a" }, new[] { "b" }, new[] { 1L }),
            new DestinationVerified(id, stats),
            new IncomingFailed(id, "x", stats),
            new CommitMigration(id),
            new GuestResumed(id, "n"),
            new AbortIncoming(id, "x"),
            new QueryHandover(id),
            new HandoverStatus(id, HandoverDecision.HandedOver),
            new MigrationProgress(id, "vm", "p", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            new MigrationFinished(new MigrationReport { Devices = new[] { new DeviceReport() } }),
            new CommandFailed("x"),
            new StartMigration("vm", "akka.tcp://mig@127.0.0.1:1", new MigrationSettings(), anyRef),
            new MigrationStarted(id, "vm"),
            new GuestList("n", new[] { new GuestInfo("vm", "n", "running", 1, 1, null) }),
            new GuestOwners(new Dictionary<string, string> { ["vm"] = "n" }),
            GetOwners.Instance,
            new SetMigrationParameters(id, 300, 1 << 20, true),
            new MigrationParametersChanged(id, 300, 1 << 20, true, "precopy"),
            new ForceSwitchover(id),
            new SwitchoverAccepted(id, "precopy"),
        ];
        // Concrete runtime types matter: Hyperion generates code per type, so the samples use arrays as the real
        // messages do (a collection expression would create a different, compiler-generated list type).
        foreach (var m in samples)
        {
            var serializer = serialization.FindSerializerFor(m);
            var bytes = serializer.ToBinary(m);
            _ = serialization.Deserialize(bytes, serializer.Identifier, m.GetType());
        }
    }
}
