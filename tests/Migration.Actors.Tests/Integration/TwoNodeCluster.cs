using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Two hypervisor nodes (two ActorSystems forming a cluster on loopback) shared by the tests of a class.
/// Every control message crosses Akka.Remote with Hyperion, and serialize-messages is on, so a message that
/// cannot be serialized fails here rather than in production.
/// </summary>
public sealed class TwoNodeCluster : IAsyncLifetime
{
    private static readonly Config TestConfig = ConfigurationFactory.ParseString("""
        akka.actor.serialize-messages = on
        akka.loglevel = WARNING
        migration.prefault-destination = off
        # A loaded machine's pause must not look like a hang: keep-majority would down one of the pair (1-1 tie).
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 10s
        # The fixture's nodes live for a whole test class: keep their pools of departed guests' RAM small.
        migration.memory-pool.max-bytes = 256MiB
        """);

    private readonly Config _config;

    public TwoNodeCluster()
        : this(Config.Empty)
    {
    }

    /// <summary>A cluster whose nodes get <paramref name="extra"/> over the test configuration (internal: xUnit fixtures need one public constructor).</summary>
    internal TwoNodeCluster(Config extra)
    {
        _config = extra.WithFallback(TestConfig);
    }

    public NodeHost Source { get; private set; } = null!;
    public NodeHost Destination { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Source = NodeHost.Start("127.0.0.1", 0, [], _config);
        await Source.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        Destination = NodeHost.Start("127.0.0.1", 0, [Source.Address], _config);
        await Destination.WaitUpAsync(2, TimeSpan.FromSeconds(30));
        await Source.WaitUpAsync(2, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        await Destination.DisposeAsync();
        await Source.DisposeAsync();
    }

    public static MigrationSettings Settings(int channels = 4) => new()
    {
        Channels = channels,
        ChunkSize = 256 * 1024,
        DeviceBufferBudget = 4 << 20,
        PrefaultDestination = false,
        VerifyTimeout = TimeSpan.FromSeconds(30),
        ProgressInterval = TimeSpan.FromMilliseconds(20),
    };

    public async Task CreateGuestAsync(NodeHost on, GuestSpec spec)
    {
        var reply = await on.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(30));
        Assert.IsType<GuestCreated>(reply);
    }

    /// <summary>Starts a migration and returns its id and a watcher that collects progress and the report.</summary>
    public async Task<(Guid Id, ReportWatcher Watcher)> StartAsync(string vmId, MigrationSettings settings, NodeHost? from = null, NodeHost? to = null)
    {
        from ??= Source;
        to ??= Destination;
        var watcher = new ReportWatcher(from.System);
        var reply = await from.Node.Ask<object>(new StartMigration(vmId, to.Address, settings, watcher.Actor), TimeSpan.FromSeconds(10));
        var started = Assert.IsType<MigrationStarted>(reply);
        return (started.MigrationId, watcher);
    }

    public static async Task<GuestList> ListAsync(NodeHost node) =>
        Assert.IsType<GuestList>(await node.Node.Ask<object>(ListGuests.Instance, TimeSpan.FromSeconds(10)));
}

/// <summary>Collects a migration's progress reports and completes with its final report.</summary>
public sealed class ReportWatcher
{
    private readonly TaskCompletionSource<MigrationReport> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<MigrationProgress> _progress = [];

    public ReportWatcher(ActorSystem system)
    {
        Actor = system.ActorOf(Props.Create(() => new Relay(this)));
    }

    public IActorRef Actor { get; }

    public IReadOnlyList<MigrationProgress> Progress
    {
        get
        {
            lock (_progress)
            {
                return _progress.ToArray();
            }
        }
    }

    public Task<MigrationReport> Finished => _done.Task;

    /// <summary>Waits until a progress report satisfies the predicate.</summary>
    public async Task<MigrationProgress> WaitForAsync(Func<MigrationProgress, bool> predicate, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !_done.Task.IsCompleted)
        {
            var hit = Progress.FirstOrDefault(predicate);
            if (hit is not null)
            {
                return hit;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException("no matching progress report; finished: " + (_done.Task.IsCompleted ? _done.Task.Result.ToString() : "no"));
    }

    private sealed class Relay : ReceiveActor
    {
        public Relay(ReportWatcher owner)
        {
            Receive<MigrationProgress>(p =>
            {
                lock (owner._progress)
                {
                    owner._progress.Add(p);
                }
            });
            Receive<MigrationFinished>(f => owner._done.TrySetResult(f.Report));
        }
    }
}
