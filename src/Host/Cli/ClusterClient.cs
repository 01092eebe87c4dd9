using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;

namespace Migration.Host.Cli;

/// <summary>
/// The CLI's connection to the cluster: a small ActorSystem with remoting (not a cluster member, so a CLI that
/// dies leaves nothing to down) that talks to the nodes' /user/node actors with the same cluster messages the
/// nodes use among themselves.
/// </summary>
public sealed class ClusterClient : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _seeds;

    private ClusterClient(ActorSystem system, IReadOnlyList<string> seeds, bool tls, TimeSpan requestTimeout)
    {
        System = system;
        _seeds = seeds;
        Tls = tls;
        RequestTimeout = requestTimeout;
    }

    /// <summary>How long one ask of a node may take (migration.cli.request-timeout) before the node counts as unreachable.</summary>
    public TimeSpan RequestTimeout { get; }

    public ActorSystem System { get; }

    /// <summary>
    /// Starts the CLI's actor system. <paramref name="configFile"/> (--config) and MIGRATION_* variables are read as by
    /// `node`; with `migration.tls` set the CLI talks TLS with its own certificate (the nodes require one signed by
    /// their CA), so a CLI must be configured like the cluster it scripts.
    /// </summary>
    public static ClusterClient Connect(IReadOnlyList<string> seeds, string? configFile = null)
    {
        if (seeds.Count == 0)
        {
            throw new CliException(ExitCodes.Usage, "no --seed given: name at least one node as HOST:PORT");
        }

        var config = ConfigurationFactory.ParseString("""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp.port = 0
            akka.loglevel = ERROR
            akka.stdout-loglevel = ERROR
            """).WithFallback(NodeHost.ReferenceConfig());
        try
        {
            config = HostConfig.Load(configFile).WithFallback(config);
            var settings = MigrationSettings.FromConfig(config);
            var requestTimeout = RequestTimeoutFrom(config);
            var system = ActorSystem.Create("cli", ControlPlaneTls.Setup(config, settings));
            return new ClusterClient(system, seeds.Select(s => NodeHost.SeedAddress(s, settings.TlsEnabled)).ToArray(), settings.TlsEnabled, requestTimeout);
        }
        catch (Exception e) when (e is FileNotFoundException or ArgumentException or ConfigurationException or global::System.Security.Cryptography.CryptographicException)
        {
            throw new CliException(ExitCodes.Usage, e.Message);
        }
    }

    /// <summary>migration.cli.request-timeout, 1 s..10 min (an ArgumentException names what arrived otherwise).</summary>
    public static TimeSpan RequestTimeoutFrom(Config config)
    {
        var value = config.GetTimeSpan("migration.cli.request-timeout", TimeSpan.FromSeconds(10));
        return value >= TimeSpan.FromSeconds(1) && value <= TimeSpan.FromMinutes(10)
            ? value
            : throw new ArgumentException($"migration.cli.request-timeout = {value.TotalSeconds:0.###} s: expected 1 s to 10 min");
    }

    /// <summary>True when this CLI talks TLS (migration.tls set).</summary>
    public bool Tls { get; }

    /// <summary>Appended to "unreachable" errors: a TLS mismatch looks like silence from the CLI's side.</summary>
    private string UnreachableHint => Tls
        ? " (this CLI uses TLS: its certificate must be signed by the cluster's CA)"
        : " (if the cluster uses TLS, pass --config FILE with migration.tls { certificate, key, ca })";

    public ActorSelection Node(string address) => System.ActorSelection($"{address.TrimEnd('/')}/user/{HypervisorNode.Name}");

    /// <summary>Asks a node; a timeout becomes "node unreachable", a CommandFailed becomes a CliException.</summary>
    public async Task<T> AskAsync<T>(string address, object message, TimeSpan? timeout = null)
    {
        object reply;
        try
        {
            reply = await Node(address).Ask<object>(message, timeout ?? RequestTimeout);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or TimeoutException)
        {
            throw new CliException(ExitCodes.Unreachable, $"node {address} unreachable (no answer within {(timeout ?? RequestTimeout).TotalSeconds:0} s)");
        }

        return reply switch
        {
            T t => t,
            CommandFailed f => throw new CliException(ExitCodes.FromCode(f.Code), f.Reason),
            _ => throw new CliException(ExitCodes.Failed, $"unexpected answer {reply.GetType().Name} from {address}"),
        };
    }

    /// <summary>The cluster's hypervisor nodes, asked of the first seed that answers.</summary>
    public async Task<IReadOnlyList<NodeInfo>> NodesAsync()
    {
        var errors = new List<string>();
        foreach (var seed in _seeds)
        {
            try
            {
                return (await AskAsync<NodeList>(seed, GetNodes.Instance)).Nodes;
            }
            catch (CliException e)
            {
                errors.Add(e.Message);
            }
        }

        throw new CliException(ExitCodes.Unreachable, "no seed node answered: " + string.Join("; ", errors) + UnreachableHint);
    }

    /// <summary>A node by name or address.</summary>
    public async Task<NodeInfo> ResolveNodeAsync(string nameOrAddress)
    {
        var nodes = await NodesAsync();
        var node = nodes.FirstOrDefault(n => n.Name == nameOrAddress || n.Address == nameOrAddress || n.Address == NodeHost.SeedAddress(nameOrAddress, Tls));
        if (node is null)
        {
            throw new CliException(ExitCodes.Unknown, $"unknown node '{nameOrAddress}'; nodes: {string.Join(", ", nodes.Select(n => n.Name))}");
        }

        if (!node.Reachable)
        {
            throw new CliException(ExitCodes.Unreachable, $"node {node.Name} ({node.Address}) is unreachable");
        }

        return node;
    }

    /// <summary>The cluster's replicated guest -> node record, read from the first seed that answers (empty if none).</summary>
    public async Task<IReadOnlyDictionary<string, string>> OwnersAsync()
    {
        foreach (var seed in _seeds)
        {
            try
            {
                return (await AskAsync<GuestOwners>(seed, GetOwners.Instance)).Owners;
            }
            catch (CliException)
            {
                // try the next seed
            }
        }

        return new Dictionary<string, string>();
    }

    /// <summary>
    /// Every Up node's guest list, asked of all reachable ones at once (one round, at most one request timeout).
    /// A node the cluster marks unreachable, or one that does not answer in time (hung, before the failure detector
    /// notices), is returned with the reason instead of silently missing, so a listing can say whose guests it could
    /// not show.
    /// </summary>
    public async Task<IReadOnlyList<NodeListing>> ListingsAsync()
    {
        var nodes = await NodesAsync();
        var listings = await Task.WhenAll(nodes.Where(n => n.Status == "Up").Select(async n =>
        {
            if (!n.Reachable)
            {
                return new NodeListing(n, null, "unreachable for the cluster");
            }

            try
            {
                return new NodeListing(n, await AskAsync<GuestList>(n.Address, ListGuests.Instance), null);
            }
            catch (CliException e)
            {
                return new NodeListing(n, null, e.Message);
            }
        }));
        return listings.OrderBy(l => l.Node.Name, StringComparer.Ordinal).ToArray();
    }

    /// <summary>Every reachable node's guests (nodes that did not answer are left out; see <see cref="ListingsAsync"/>).</summary>
    public async Task<IReadOnlyList<(NodeInfo Node, GuestInfo Guest)>> GuestsAsync() => Guests(await ListingsAsync());

    public static IReadOnlyList<(NodeInfo Node, GuestInfo Guest)> Guests(IReadOnlyList<NodeListing> listings) =>
        listings.Where(l => l.List is not null).SelectMany(l => l.List!.Guests.Select(g => (l.Node, g)))
            .OrderBy(x => x.g.VmId, StringComparer.Ordinal).ToArray();

    /// <summary>
    /// One line per member whose guests a listing could not show (unreachable, or no answer in time: a hung node), so
    /// that a table without them does not read as "it runs none".
    /// </summary>
    public static IEnumerable<string> MissingListings(IReadOnlyList<NodeListing> listings) =>
        listings.Where(l => l.Error is not null).Select(l => $"node {l.Node.Name}: {l.Error}; its guests are not listed");

    /// <summary>The memory pools in these listings (nodes that report none are left out).</summary>
    public static IReadOnlyList<(NodeInfo Node, MemoryPoolInfo Pool)> Pools(IReadOnlyList<NodeListing> listings) =>
        listings.Where(l => l.List?.Pool is not null).Select(l => (l.Node, l.List!.Pool!)).ToArray();

    public async Task<(NodeInfo Node, GuestInfo Guest)> FindGuestAsync(string vmId)
    {
        var listings = await ListingsAsync();
        // Prefer the node that runs the guest (or migrates it away) over a destination still holding a verified copy
        // that waits for the source's answer ("in-doubt"), which cannot be migrated.
        var hit = Guests(listings).Where(x => x.Guest.VmId == vmId).OrderBy(x => x.Guest.State == "in-doubt" ? 1 : 0).FirstOrDefault();
        if (hit.Guest is null)
        {
            // A node that did not answer may run it: say so rather than a bare "unknown".
            var missing = string.Join("; ", MissingListings(listings));
            throw new CliException(ExitCodes.Unknown, $"unknown guest '{vmId}'" + (missing.Length > 0 ? $" ({missing})" : ""));
        }

        return hit;
    }

    /// <summary>Every reachable node's outgoing migrations.</summary>
    public async Task<IReadOnlyList<(NodeInfo Node, MigrationInfo Migration)>> MigrationsAsync()
    {
        var nodes = await NodesAsync();
        var lists = await Task.WhenAll(nodes.Where(n => n.Reachable && n.Status == "Up").Select(async n =>
        {
            try
            {
                return (await AskAsync<MigrationList>(n.Address, GetMigrations.Instance)).Migrations.Select(m => (n, m)).ToArray();
            }
            catch (CliException)
            {
                return [];
            }
        }));
        return lists.SelectMany(x => x).ToArray();
    }

    public async ValueTask DisposeAsync() => await System.Terminate();
}

/// <summary>A CLI failure: one line for the operator and the exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Exit codes of the CLI (documented in README).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
    public const int Unknown = 3;
    public const int Unreachable = 4;
    public const int Refused = 5;

    public static int FromCode(string code) => code switch
    {
        "unknown-guest" or "unknown-migration" or "unknown-node" => Unknown,
        "already-migrating" or "exists" or "same-node" or "no-memory" or "too-late" or "ended" or "cordoned" or "already-draining" => Refused,
        "bad-settings" or "bad-guest" => Usage,
        _ => Failed,
    };
}

/// <summary>One node's answer to ListGuests: its list, or why there is none (<see cref="Error"/>, e.g. no answer in time).</summary>
public sealed record NodeListing(NodeInfo Node, GuestList? List, string? Error);

