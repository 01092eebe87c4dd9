using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Settings;

namespace Migration.Actors.Node;

// A node that the cluster removed comes back by itself, as a new incarnation in the same process, with its guests.
public sealed partial class NodeHost
{
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
}
