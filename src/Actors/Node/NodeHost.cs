using System.Reflection;
using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Settings;

namespace Migration.Actors.Node;

/// <summary>
/// Starts one hypervisor node: an ActorSystem named "mig" that joins the cluster, with its HypervisorNode at
/// /user/node. Configuration = overrides, then the reference HOCON shipped in hocon/ (embedded in this assembly).
/// </summary>
public sealed class NodeHost : IAsyncDisposable
{
    public const string SystemName = "mig";

    /// <summary>Cluster role that carries a node's operator-given name.</summary>
    public const string NameRolePrefix = "name:";

    /// <summary>"HOST:PORT" or a full Akka address -> the node's Akka address (akka.ssl.tcp when <paramref name="tls"/>).</summary>
    public static string SeedAddress(string seed, bool tls = false) => ControlPlaneTls.Address(seed, tls);

    private NodeHost(ActorSystem system, IActorRef node, MigrationSettings settings)
    {
        System = system;
        Node = node;
        Settings = settings;
    }

    public ActorSystem System { get; }
    public IActorRef Node { get; }
    public MigrationSettings Settings { get; }

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
        seeds = seeds.Select(s => SeedAddress(s, settings.TlsEnabled)).ToArray();
        var system = ActorSystem.Create(SystemName, ControlPlaneTls.Setup(config, settings));
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (seeds.Count == 0)
        {
            cluster.Join(cluster.SelfAddress);
        }
        else
        {
            cluster.JoinSeedNodes(seeds.Select(Akka.Actor.Address.Parse));
        }

        var node = role == "client" ? ActorRefs.Nobody : system.ActorOf(HypervisorNode.Props(settings), HypervisorNode.Name);
        SerializationWarmup.Run(system, system.DeadLetters);
        return new NodeHost(system, node, settings);
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

    public async ValueTask DisposeAsync()
    {
        var cluster = Akka.Cluster.Cluster.Get(System);
        try
        {
            await cluster.LeaveAsync(new CancellationTokenSource(TimeSpan.FromSeconds(3)).Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // leaving is best effort; terminate anyway
        }

        await System.Terminate().ConfigureAwait(false);
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
