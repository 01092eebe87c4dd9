using Akka.Actor;
using Akka.DistributedData;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Drain;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Actors.Source;

namespace Migration.Actors.Node;

/// <summary>
/// One per node, at /user/node: the entry point of every cluster command (create, list, migrate, cancel, status) and of
/// incoming migrations. A guest is in the registry of exactly one node: it leaves the source's registry only after the
/// destination verified it (GuestHandedOver), and enters the destination's only when it runs there (IncomingGuestRunning).
/// The actor keeps the receive table, the command checks and its children (the channel listener, coordinators, incoming
/// migrations); its state lives in plain collaborators it creates and calls on its own thread only (docs/architecture.md,
/// "Node structure"): <see cref="GuestRegistry"/>, <see cref="IncomingMigrations"/>, <see cref="OutgoingMigrations"/>
/// (with the <see cref="HandoverLedger"/> that answers a destination whose CommitMigration was lost),
/// <see cref="GuestCreation"/>, <see cref="IncomingReception"/> (the destination role), <see cref="MigrationHistory"/>,
/// <see cref="NodeMetricsFeed"/>, <see cref="GuestReclaim"/>, <see cref="CustodyKeeper"/>, <see cref="MigrationChildFailures"/>, <see cref="CreatedGuestClaims"/> and <see cref="CordonView"/>. Work done elsewhere
/// (claims, custody, digests, the Replicator) comes back as messages, which the table hands to the collaborator concerned.
/// </summary>
public sealed class HypervisorNode : ReceiveActor, IWithTimers
{
    public const string Name = "node";

    /// <summary>The `vm list` state of a copy whose ownership is being asked of the record (<see cref="GuestReclaim"/>).</summary>
    public const string UnconfirmedState = "unconfirmed";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly MigrationSettings _defaults;
    private readonly string _nodeName;
    private readonly GuestStore _store;
    private readonly bool _ownsStore;
    private readonly IncomingMigrations _incoming = new();
    private readonly GuestRegistry _guests;
    private readonly MigrationHistory _history;
    private readonly OutgoingMigrations _outgoing;
    private readonly NodeMetricsFeed _metrics;
    private readonly GuestReclaim _reclaim;
    private readonly CustodyKeeper _custody;
    private readonly MigrationChildFailures _childFailures;
    private readonly CreatedGuestClaims _creations;
    private readonly GuestCreation _creation;
    private readonly CordonView _cordon;
    private readonly NodeCommandChecks _checks;
    private readonly IncomingReception _reception;
    private IActorRef _listener = ActorRefs.Nobody;
    private OwnershipRegistry? _owners;
    private Transport.Channels.ChannelTls? _tls;
    private int _listenerPort;

    public HypervisorNode(MigrationSettings defaults, GuestStore? store = null)
    {
        _defaults = defaults;
        _ownsStore = store is null;
        _store = store ?? new GuestStore();
        _nodeName = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        _guests = new GuestRegistry(_nodeName, defaults, Context.System, _incoming);
        _history = new MigrationHistory(_nodeName, _store);
        _outgoing = new OutgoingMigrations(_nodeName, _history);
        _metrics = new NodeMetricsFeed(_log, Context.System, _guests, _incoming, _outgoing, _history);
        _reclaim = new GuestReclaim(Context, _log, _nodeName, _store, _guests, _outgoing, _metrics, () => Timers);
        _custody = new CustodyKeeper(Context, _log, _nodeName, _store, _guests, _outgoing, _history, _reclaim, _metrics);
        _childFailures = new MigrationChildFailures(Context, _log, _nodeName, () => _listener, _store, _guests, _incoming, _outgoing, _history, _reclaim, _custody);
        _creations = new CreatedGuestClaims(Context, _log, _nodeName);
        _cordon = new CordonView(_nodeName);
        _checks = new NodeCommandChecks(_nodeName, defaults, _log, _guests, _incoming, _outgoing, _history, _cordon);
        _creation = new GuestCreation(Context, _checks, _guests, _store, _metrics, _creations);
        _reception = new IncomingReception(Context, _log, _nodeName, _checks, _incoming, _guests, _store, _metrics,
            () => new ListenerEndpoint(_listener, _defaults.ListenerHost, _listenerPort, _tls is not null));

        Receive<CreateGuest>(c => _creation.OnCreate(c, Sender));
        Receive<GuestCreation.Built>(_creation.OnBuilt);
        Receive<ListGuests>(_ => Sender.Tell(new GuestList(_nodeName, _guests.List(), NodeMemoryPool.Get(Context.System).Info())));
        Receive<GetGuestDigests>(OnGetDigests);
        Receive<StartMigration>(OnStartMigration);
        Receive<CancelMigration>(c => Forward(c.MigrationId, c));
        Receive<SetMigrationParameters>(c => Forward(c.MigrationId, c));
        Receive<ForceSwitchover>(c => Forward(c.MigrationId, c));
        Receive<SubscribeMigration>(s =>
        {
            if (_history.TryGetFinished(s.MigrationId, out var report))
            {
                s.Subscriber.Tell(new MigrationFinished(report));
            }
            else
            {
                if (_outgoing.IsRunning(s.MigrationId))
                {
                    _outgoing.RememberWatcher(s.MigrationId, s.Subscriber);
                }

                Forward(s.MigrationId, s);
            }
        });
        Receive<InjectChannelKill>(k => Forward(k.MigrationId, k));
        Receive<GuestHandedOver>(OnHandedOver);
        // A destination that verified a guest of ours but got no CommitMigration asks what we decided (a pure read).
        Receive<QueryHandover>(q => Sender.Tell(new HandoverStatus(q.MigrationId, _outgoing.Decide(q.MigrationId))));
        Receive<IncomingInDoubt>(d => _incoming.MarkInDoubt(d.MigrationId, d.Info));
        Receive<MigrationEnded>(OnMigrationEnded);
        Receive<Terminated>(t =>
        {
            _childFailures.OnTerminated(t);
            _reception.OnChildTerminated();
        });
        Receive<PrepareIncoming>(p => _reception.OnPrepare(p, Sender));
        Receive<AbortIncoming>(a => _reception.OnAbort(a, Sender));
        Receive<IncomingGuestRunning>(_reception.OnRunning);
        Receive<IncomingDiscarded>(_reception.OnDiscarded);
        Receive<GetNodes>(_ => Sender.Tell(NodeListing.Of(Context.System)));
        Receive<GetMigrations>(_ => Sender.Tell(_history.List()));
        Receive<GetOwners>(_ => _owners!.Read(Self, Sender));
        Receive<GetSuccess>(g => ((IActorRef)g.Request!).Tell(new GuestOwners(OwnershipRegistry.Owners(g))));
        Receive<NotFound>(n => ((IActorRef)n.Request!).Tell(new GuestOwners(new Dictionary<string, string>())));
        Receive<UpdateSuccess>(_ => { });
        Receive<MigrationProgress>(p =>
        {
            _history.Progress(p);
            _metrics.Progress(p);
        });
        Receive<IncomingTraffic>(_metrics.IncomingTraffic);
        Receive<MigrationFinished>(_ => { }); // MigrationEnded carries the same report
        Receive<ClaimResult>(r =>
        {
            if (r.Kind == ClaimKind.Reclaim)
            {
                _reclaim.OnReclaimed(r);
            }
            else
            {
                _creations.OnRecorded(r);
            }
        });
        Receive<GuestReclaim.Tick>(_ => _reclaim.AskRecord());
        Receive<ReplicaCount>(_reclaim.OnReplicaCount);
        Receive<CustodyEnded>(_custody.OnCustodyEnded);
        Receive<Changed>(CordonView.IsCordonChange, _cordon.OnChanged);
        Receive<GetCapacity>(_ => Sender.Tell(new NodeCapacity(_nodeName, _guests.MemoryCapacity, _guests.MemoryUsed(), _incoming.Ids(), _cordon.SelfCordoned)));
    }

    /// <param name="store">Where the guests live, outliving this actor (NodeHost's, so a new incarnation adopts them);
    /// null = a store of this actor's own, whose guests are disposed when it stops.</param>
    public static Props Props(MigrationSettings defaults, GuestStore? store = null) => Akka.Actor.Props.Create(() => new HypervisorNode(defaults, store));

    /// <summary>The node's timers (set by Akka before PreStart): the reclaim retry only (<see cref="GuestReclaim"/>).</summary>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Migration actors are stopped, never restarted; the channel listener is resumed (<see cref="MigrationChildFailures"/>).</summary>
    protected override SupervisorStrategy SupervisorStrategy() => _childFailures.Strategy();

    protected override void PreStart()
    {
        _tls = _defaults.TlsEnabled ? Transport.Channels.ChannelTls.Load(_defaults.TlsCertificate, _defaults.TlsKey, _defaults.TlsCa) : null;
        var socket = ChannelListener.Bind(_defaults.ListenerHost, _defaults.ListenerPort);
        _listenerPort = ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        _listener = Context.ActorOf(ChannelListener.Props(socket, _defaults.HandshakeTimeout, _tls), "listener");
        _owners = new OwnershipRegistry(Context.System);
        CordonView.Subscribe(Context.System, Self);
        _ = NodeMemoryPool.Get(Context.System); // created now: populates migration.memory-pool.populate in the background
        _log.Info("node {0}: channel listener on {1}:{2}", _nodeName, _defaults.ListenerHost, _listenerPort);
        _history.LoadStoredReports();
        _reclaim.AdoptStoredGuests();
        _metrics.Publish();
    }

    protected override void PostStop()
    {
        _creation.Stop(); // a guest still being built is disposed by its build task
        // With NodeHost's store the guests outlive this incarnation (they are adopted by the next, or disposed by NodeHost).
        if (_ownsStore)
        {
            _store.DisposeAll();
        }
    }

    private void OnGetDigests(GetGuestDigests g)
    {
        if (_guests.TryGet(g.VmId, out var entry))
        {
            GuestDigestCheck.Start(entry, Sender);
        }
        else
        {
            Sender.Tell(new CommandFailed($"unknown guest {g.VmId} on {_nodeName}", "unknown-guest"));
        }
    }

    private void OnStartMigration(StartMigration s)
    {
        if (_checks.Answered(s, Sender, Self, out var entry))
        {
            return;
        }

        SerializationWarmup.WarmBeforeMigration(Context.System, Self, _log);
        var id = s.MigrationId ?? Guid.NewGuid();
        var coordinator = Context.ActorOf(MigrationCoordinator.Props(id, entry.Guest, s.DestinationNode, _nodeName, s.Settings, s.Subscriber, _tls), $"migration-{id:N}");
        // The node follows its migrations' progress too, to answer status queries.
        coordinator.Tell(new SubscribeMigration(id, Self));
        entry.MigrationId = id;
        entry.State = "migrating";
        _store.MigrationStarted(s.VmId, id, s.DestinationNode);
        _outgoing.Started(id, s.VmId, s.DestinationNode, coordinator, s.Subscriber);
        Context.Watch(coordinator);
        Sender.Tell(new MigrationStarted(id, s.VmId));
    }

    private void OnHandedOver(GuestHandedOver h)
    {
        _outgoing.HandedOver(h.MigrationId);
        _store.Released(h.VmId, h.MigrationId);
        if (_guests.Remove(h.VmId, out var entry))
        {
            // The destination verified the guest: it is no longer ours. The workload is already paused;
            // the RAM is released once the coordinator is done with it (MigrationEnded).
            _guests.KeepHandedOver(h.MigrationId, entry.Guest);
        }
    }

    private void OnMigrationEnded(MigrationEnded e)
    {
        _outgoing.Ended(e);
        if (_guests.TakeHandedOver(e.MigrationId, out var gone) && !e.HandedOver)
        {
            // Released on DestinationVerified, then taken back through the ownership record: it runs here again.
            _custody.TookBack(e.MigrationId, gone);
        }
        else if (gone is not null)
        {
            _store.Remove(gone);
            gone.Release(NodeMemoryPool.Get(Context.System).Pool); // touched memory for a later incoming guest
        }
        else if (_guests.TryGet(e.VmId, out var entry))
        {
            _store.MigrationEnded(e.VmId, e.MigrationId);
            entry.MigrationId = null;
            entry.State = "running";
        }

        _metrics.Ended(e);
        Context.Stop(Sender);
    }

    private void Forward(Guid migrationId, object message)
    {
        if (_outgoing.TryGetCoordinator(migrationId, out var c))
        {
            c.Forward(message);
        }
        else if (_guests.IsHandedOver(migrationId))
        {
            _custody.AnswerInCustody(migrationId, message, Sender); // its coordinator died after the hand-over
        }
        else if (_history.IsFinished(migrationId))
        {
            Sender.Tell(new CommandFailed($"migration {migrationId} has ended", "ended"));
        }
        else
        {
            Sender.Tell(new CommandFailed($"unknown migration {migrationId} on {_nodeName}", "unknown-migration"));
        }
    }
}
