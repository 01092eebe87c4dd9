using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Migration.Actors.Cluster;

/// <summary>
/// Downing strategy of the hypervisor cluster: a member that stays unreachable for `stable-after` is downed
/// by the reachable members, and a node never downs itself. Why not the default split-brain resolver: with two
/// hypervisor nodes it shuts the survivor's ActorSystem down when the lowest-address member dies
/// (shared/AKKA-NOTES.md, section 2), and a hypervisor must outlive its peers. Guest ownership changes through
/// the migration commit handshake, so a partition usually at worst fails migrations (the guests stay where they
/// run). One exception: a destination whose commit is in doubt resumes the guest when the source node is removed,
/// taking "removed" for "dead"; a partition beginning while DestinationVerified is in flight can then duplicate the
/// guest (docs/architecture.md, "Lost commit"). Configured as akka.cluster.downing-provider-class.
/// </summary>
public sealed class SurvivorDowningProvider : IDowningProvider
{
    private readonly ActorSystem _system;

    public SurvivorDowningProvider(ActorSystem system, Akka.Cluster.Cluster cluster)
    {
        _system = system;
        var cfg = system.Settings.Config.GetConfig("akka.cluster.survivor-downing");
        StableAfter = cfg?.GetTimeSpan("stable-after", TimeSpan.FromSeconds(5)) ?? TimeSpan.FromSeconds(5);
    }

    public TimeSpan StableAfter { get; }

    public TimeSpan DownRemovalMargin => TimeSpan.Zero;

    public Props DowningActorProps => Props.Create(() => new SurvivorDowning(StableAfter));
}

/// <summary>Downs members that stay unreachable for the stable period; the lowest reachable address acts.</summary>
internal sealed class SurvivorDowning : ReceiveActor, IWithTimers
{
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TimeSpan _stableAfter;
    private readonly Dictionary<UniqueAddress, DateTime> _unreachableSince = new();

    public SurvivorDowning(TimeSpan stableAfter)
    {
        _stableAfter = stableAfter;
        Receive<ClusterEvent.UnreachableMember>(u => _unreachableSince[u.Member.UniqueAddress] = DateTime.UtcNow);
        Receive<ClusterEvent.ReachableMember>(r => _unreachableSince.Remove(r.Member.UniqueAddress));
        Receive<ClusterEvent.MemberRemoved>(r => _unreachableSince.Remove(r.Member.UniqueAddress));
        Receive<ClusterEvent.CurrentClusterState>(s =>
        {
            foreach (var m in s.Unreachable)
            {
                _unreachableSince[m.UniqueAddress] = DateTime.UtcNow;
            }
        });
        Receive<Tick>(_ => Decide());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromMilliseconds(500));
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Decide()
    {
        var state = _cluster.State;
        var reachable = state.Members.Where(m => !state.Unreachable.Contains(m) && m.Status is MemberStatus.Up or MemberStatus.Joining or MemberStatus.WeaklyUp)
            .Select(m => m.Address).OrderBy(a => a, Member.AddressOrdering).FirstOrDefault();
        if (reachable is null || reachable != _cluster.SelfAddress)
        {
            return;
        }

        foreach (var (member, since) in _unreachableSince.ToArray())
        {
            if (member.Equals(_cluster.SelfUniqueAddress) || DateTime.UtcNow - since < _stableAfter)
            {
                continue;
            }

            _log.Warning("survivor downing: {0} unreachable for {1:0.#} s; downing it", member.Address, (DateTime.UtcNow - since).TotalSeconds);
            _cluster.Down(member.Address);
            _unreachableSince.Remove(member);
        }
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }
}
