using System.Collections.Concurrent;
using System.Reflection;
using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Settings;

namespace Migration.Actors.Node;

/// <summary>
/// Starts one hypervisor node: an ActorSystem named "mig" that joins the cluster, with its HypervisorNode at
/// /user/node. Configuration = overrides, then the reference HOCON shipped in hocon/ (embedded in this assembly).
/// The guests live in <see cref="Guests"/>, outside the ActorSystem: if the cluster downs this node, a new incarnation
/// (a new ActorSystem at the same address) rejoins by itself, in the same process, and adopts them (<see cref="OnTerminated"/>).
/// <see cref="System"/> and <see cref="Node"/> always name the current incarnation. The incarnation fields are guarded by
/// one lock: they are written by the starting thread, the rejoin task and the termination continuation.
/// </summary>
public sealed class NodeHost : IAsyncDisposable
{
    public const string SystemName = "mig";

    /// <summary>Cluster role that carries a node's operator-given name.</summary>
    public const string NameRolePrefix = "name:";

    /// <summary>"HOST:PORT" or a full Akka address -> the node's Akka address (akka.ssl.tcp when <paramref name="tls"/>).</summary>
    public static string SeedAddress(string seed, bool tls = false) => ControlPlaneTls.Address(seed, tls);

    private readonly object _gate = new();
    private readonly IReadOnlyList<Address> _seeds;
    private readonly string? _role;
    private readonly RejoinSettings _rejoin;
    private readonly ConcurrentDictionary<Address, byte> _peers = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Config _config;
    private ActorSystem? _system;
    private IActorRef _node = ActorRefs.Nobody;
    private bool _disposing;
    private int _incarnation;

    private NodeHost(Config config, IReadOnlyList<Address> seeds, string? role, MigrationSettings settings, RejoinSettings rejoin)
    {
        _config = config;
        _seeds = seeds;
        _role = role;
        Settings = settings;
        _rejoin = rejoin;
    }

    public ActorSystem System => _system!;
    public IActorRef Node => _node;
    public MigrationSettings Settings { get; }

    /// <summary>The guests this node runs; they outlive an incarnation and are disposed when the node ends for good.</summary>
    public GuestStore Guests { get; } = new();

    /// <summary>This node's cluster address, e.g. akka.tcp://mig@127.0.0.1:40123.</summary>
    public string Address => Akka.Cluster.Cluster.Get(System).SelfAddress.ToString();

    /// <summary>The reference configuration (cluster.conf over migration.conf).</summary>
    public static Config ReferenceConfig() => ConfigurationFactory.ParseString(Resource("cluster.conf"))
        .WithFallback(ConfigurationFactory.ParseString(Resource("migration.conf")));

    /// <summary>
    /// Starts a node on host:port (0 = any free port) joining <paramref name="seeds"/> (Akka addresses or HOST:PORT);
    /// with no seeds it joins itself (the first node of a cluster). <paramref name="name"/> is the operator's name
    /// for the node (cluster role "name:NAME"); by default its address.
    /// </summary>
    public static NodeHost Start(string host, int port, IReadOnlyList<string> seeds, Config? extra = null, string? role = null, string? name = null)
    {
        var roles = role ?? "hypervisor";
        if (name is not null)
        {
            roles += $", \"{NameRolePrefix}{name}\"";
        }

        var overrides = ConfigurationFactory.ParseString($$"""
            akka.remote.dot-netty.tcp.hostname = "{{host}}"
            akka.remote.dot-netty.tcp.port = {{port}}
            akka.cluster.roles = [{{roles}}]
            """);
        var config = (extra ?? Config.Empty).WithFallback(overrides).WithFallback(ReferenceConfig());
        // Read and check the settings (and TLS files) before starting anything, so a bad configuration fails here
        // with its own message rather than inside the node actor. migration.tls secures the cluster transport too.
        var settings = MigrationSettings.FromConfig(config);
        var seedAddresses = seeds.Select(s => Akka.Actor.Address.Parse(SeedAddress(s, settings.TlsEnabled))).ToArray();
        var observability = ObservabilitySettings.FromConfig(config);
        if (observability.LogFormat == "json")
        {
            config = ConfigurationFactory.ParseString($"akka.stdout-logger-class = \"{typeof(Logging.NodeJsonStdoutLogger).AssemblyQualifiedName}\"").WithFallback(config);
        }

        var nodeHost = new NodeHost(config, seedAddresses, role, settings, RejoinSettings.FromConfig(config));
        nodeHost.Launch(nodeHost._seeds);
        return nodeHost;
    }

    /// <summary>
    /// Starts an incarnation: the ActorSystem (TLS on the cluster transport when migration.tls is set), its cluster
    /// join (with no seeds: joins itself, the first node of a cluster), the node actor over <see cref="Guests"/>, and
    /// the watch for a downing.
    /// </summary>
    private void Launch(IReadOnlyList<Address> seeds)
    {
        var system = ActorSystem.Create(SystemName, ControlPlaneTls.Setup(_config, Settings));
        // Every incarnation serves /metrics itself (the previous one's server stopped with its ActorSystem).
        StartMetrics(system, ObservabilitySettings.FromConfig(_config));
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (seeds.Count == 0)
        {
            cluster.Join(cluster.SelfAddress);
        }
        else
        {
            cluster.JoinSeedNodes(seeds);
        }

        // Each Akka extension that injects its reference configuration later replaces the system's Serialization, and
        // with it Hyperion's generated code (SerializationWarmup). DistributedData (the node's ownership and drain
        // records) and Cluster.Tools (the drain singleton) inject theirs here, before the one warm-up, not after it.
        SystemExtensions.InjectBeforeWarmup(system, hypervisor: _role != "client");
        var node = _role == "client" ? ActorRefs.Nobody : system.ActorOf(HypervisorNode.Props(Settings, Guests), HypervisorNode.Name);
        system.ActorOf(PeerTracker.Props(_peers), "peer-tracker");
        system.ActorOf(MembershipLog.Props(), "membership-log");
        SerializationWarmup.EnsureWarm(system, system.DeadLetters);
        // Checked again once Up and before each migration (a reference compare): an extension loaded later than
        // InjectBeforeWarmup would have replaced the system's Serialization, and then the warm-up runs again.
        cluster.RegisterOnMemberUp(() => SerializationWarmup.EnsureWarm(system, system.DeadLetters));
        DeviceCodeWarmup.Run();
        lock (_gate)
        {
            _system = system;
            _node = node;
            _incarnation++;
            // A new incarnation must come back at the same address (port 0 resolved the first time).
            _config = ConfigurationFactory.ParseString($"akka.remote.dot-netty.tcp.port = {cluster.SelfAddress.Port}").WithFallback(_config);
        }

        system.WhenTerminated.ContinueWith(_ => OnTerminated(system), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>The node's /metrics endpoint when migration.metrics.port is set; a port that cannot be bound fails the start.</summary>
    private static void StartMetrics(ActorSystem system, ObservabilitySettings settings)
    {
        if (!settings.MetricsEnabled)
        {
            return;
        }

        try
        {
            Metrics.NodeMetrics.Get(system).StartServer(settings.MetricsHost, settings.MetricsPort);
        }
        catch (Exception e) when (e is global::System.Net.HttpListenerException or InvalidOperationException or IOException)
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
            throw new ArgumentException($"migration.metrics.port {settings.MetricsPort}: cannot serve /metrics on {settings.MetricsHost} ({e.Message})", e);
        }
    }

    /// <summary>1 for the first ActorSystem of this node, +1 for each rejoin after a downing.</summary>
    public int Incarnation
    {
        get { lock (_gate) return _incarnation; }
    }

    /// <summary>Completes when the node ends for good: disposed, or its ActorSystem terminated for a reason other than a downing.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>
    /// One line for the operator each time the node is downed, and each time a new incarnation is Up again (raised on a
    /// thread-pool thread). The `node` command prints them.
    /// </summary>
    public event Action<string>? Notice;

    /// <summary>
    /// An incarnation's ActorSystem terminated. After a downing (CoordinatedShutdown reason ClusterDowningReason:
    /// the split-brain resolver downed this node, or its peers did and this node learnt it) and unless the operator is
    /// shutting the node down, a new incarnation starts; otherwise the node ends.
    /// </summary>
    private void OnTerminated(ActorSystem old)
    {
        var reason = CoordinatedShutdown.Get(old).ShutdownReason;
        bool rejoin;
        lock (_gate)
        {
            rejoin = !_disposing && _rejoin.Enabled && _role != "client" && ReferenceEquals(old, _system) &&
                     reason is CoordinatedShutdown.ClusterDowningReason;
        }

        if (!rejoin)
        {
            _stopped.TrySetResult();
            return;
        }

        Notice?.Invoke($"removed from the cluster (downed); rejoining as incarnation {Incarnation + 1} with {Guests.Count} guest(s)");
        _ = Task.Run(RejoinAsync);
    }

    /// <summary>
    /// Starts new incarnations until one starts (retrying every retry-interval, e.g. while the port is still held), then
    /// waits until it is Up. It joins every member the node has seen Up and the original seeds, never itself: a
    /// removed node must not form a cluster of its own; it waits for a member of the cluster that removed it.
    /// </summary>
    private async Task RejoinAsync()
    {
        var self = Akka.Cluster.Cluster.Get(System).SelfAddress;
        var seeds = _peers.Keys.Concat(_seeds).Where(a => a != self).Distinct().ToArray();
        while (true)
        {
            lock (_gate)
            {
                if (_disposing)
                {
                    return;
                }
            }

            try
            {
                Launch(seeds);
                break;
            }
            catch (Exception e)
            {
                Notice?.Invoke($"could not start a new incarnation ({e.GetType().Name}: {e.Message}); retrying in {_rejoin.RetryInterval.TotalSeconds:0.#} s");
                await Task.Delay(_rejoin.RetryInterval).ConfigureAwait(false);
            }
        }

        var incarnation = Incarnation;
        lock (_gate)
        {
            if (_disposing)
            {
                _ = System.Terminate();
                return;
            }
        }

        try
        {
            await WaitUpAsync(1, TimeSpan.FromDays(1)).ConfigureAwait(false);
            Notice?.Invoke($"rejoined at {Address} (incarnation {incarnation}) with {Guests.Count} guest(s)");
        }
        catch (TimeoutException)
        {
            // still not admitted a day later: the next downing or the operator decides
        }
    }

    /// <summary>Waits until this node is Up and the cluster has at least <paramref name="members"/> Up members.</summary>
    public async Task WaitUpAsync(int members, TimeSpan timeout)
    {
        var cluster = Akka.Cluster.Cluster.Get(System);
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var state = cluster.State;
            if (state.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) >= members &&
                state.Members.Any(m => m.Address == cluster.SelfAddress && m.Status == Akka.Cluster.MemberStatus.Up))
            {
                return;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        throw new TimeoutException($"node {Address}: cluster of {members} members not up within {timeout.TotalSeconds:0} s");
    }

    /// <summary>The operator's shutdown: leaves the cluster, terminates the ActorSystem (no rejoin), disposes every guest.</summary>
    public async ValueTask DisposeAsync()
    {
        ActorSystem system;
        lock (_gate)
        {
            _disposing = true;
            system = System;
        }

        var cluster = Akka.Cluster.Cluster.Get(system);
        try
        {
            await cluster.LeaveAsync(new CancellationTokenSource(TimeSpan.FromSeconds(3)).Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // leaving is best effort; terminate anyway
        }

        await system.Terminate().ConfigureAwait(false);
        Guests.DisposeAll();
        _stopped.TrySetResult();
    }

    private static string Resource(string file)
    {
        var asm = typeof(NodeHost).Assembly;
        var name = asm.GetManifestResourceNames().FirstOrDefault(n => n.EndsWith("." + file, StringComparison.Ordinal))
                   ?? throw new InvalidOperationException($"embedded HOCON {file} missing from {asm.GetName().Name}");
        using var stream = asm.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
