using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Actors.Source;
using Migration.Devices.Guest;
using Migration.Devices.Workload;

namespace Migration.Actors.Node;

/// <summary>
/// One per node, at /user/node: the registry of the guests this node owns and the entry point of every
/// cluster command (create, list, migrate, cancel, status) and of incoming migrations. A guest is in the
/// registry of exactly one node: it leaves the source's registry only after the destination verified it
/// (GuestHandedOver), and enters the destination's only when it runs there (IncomingGuestRunning).
/// It remembers what became of each outgoing migration's guest (<see cref="HandoverLedger"/>) to answer a destination
/// whose CommitMigration was lost (QueryHandover), and lists an incoming guest whose commit is in doubt.
/// Registry state is touched only on this actor's thread.
/// </summary>
public sealed partial class HypervisorNode : ReceiveActor
{
    public const string Name = "node";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly MigrationSettings _defaults;
    private readonly Dictionary<string, GuestEntry> _guests = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, IActorRef> _outgoing = new();
    private readonly Dictionary<Guid, (string VmId, IActorRef Actor, long RamBytes, IActorRef Source)> _incoming = new();
    private readonly Dictionary<Guid, MigrationReport> _finished = new();
    private readonly Dictionary<Guid, MigrationProgress> _progress = new();
    private readonly Dictionary<Guid, (string VmId, string Destination)> _started = new();
    private readonly HandoverLedger _handovers = new();
    private readonly Dictionary<Guid, GuestInfo> _inDoubt = new();
    private readonly string _nodeName;
    private readonly GuestStore _store;
    private readonly bool _ownsStore;
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

        Receive<CreateGuest>(OnCreateGuest);
        Receive<ListGuests>(_ => Sender.Tell(new GuestList(_nodeName, _guests.Values.Select(Info).Concat(_inDoubt.Values).ToArray(), NodeMemoryPool.Get(Context.System).Info())));
        Receive<GetGuestDigests>(OnGetDigests);
        Receive<StartMigration>(OnStartMigration);
        Receive<CancelMigration>(c => Forward(c.MigrationId, c));
        Receive<SetMigrationParameters>(c => Forward(c.MigrationId, c));
        Receive<ForceSwitchover>(c => Forward(c.MigrationId, c));
        Receive<SubscribeMigration>(s =>
        {
            if (_finished.TryGetValue(s.MigrationId, out var report))
            {
                s.Subscriber.Tell(new MigrationFinished(report));
            }
            else
            {
                if (_outgoing.ContainsKey(s.MigrationId))
                {
                    RememberWatcher(s.MigrationId, s.Subscriber);
                }

                Forward(s.MigrationId, s);
            }
        });
        Receive<InjectChannelKill>(k => Forward(k.MigrationId, k));
        Receive<GuestHandedOver>(OnHandedOver);
        // A destination that verified a guest of ours but got no CommitMigration asks what we decided (a pure read).
        Receive<QueryHandover>(q => Sender.Tell(new HandoverStatus(q.MigrationId, _handovers.Decide(q.MigrationId))));
        Receive<IncomingInDoubt>(d =>
        {
            if (_incoming.ContainsKey(d.MigrationId))
            {
                _inDoubt[d.MigrationId] = d.Info;
            }
        });
        Receive<MigrationEnded>(OnMigrationEnded);
        Receive<Terminated>(OnChildTerminated);
        Receive<PrepareIncoming>(OnPrepareIncoming);
        Receive<AbortIncoming>(a =>
        {
            if (_incoming.TryGetValue(a.MigrationId, out var inc))
            {
                inc.Actor.Forward(a);
            }
        });
        Receive<IncomingGuestRunning>(r =>
        {
            _incoming.Remove(r.MigrationId);
            _inDoubt.Remove(r.MigrationId);
            _guests[r.Guest.Id] = new GuestEntry(r.Guest) { State = "running" };
            _store.Add(r.Guest);
            _log.Info("guest {0} now runs on {1} (migration {2})", r.Guest.Id, _nodeName, r.MigrationId);
            OnIncomingEndedForMetrics(r.MigrationId, "completed");
        });
        Receive<IncomingDiscarded>(d =>
        {
            _incoming.Remove(d.MigrationId);
            _inDoubt.Remove(d.MigrationId);
            OnIncomingEndedForMetrics(d.MigrationId, "discarded", d.Reason);
        });
        Receive<GetNodes>(_ => Sender.Tell(Nodes()));
        Receive<GetMigrations>(_ => Sender.Tell(Migrations()));
        Receive<GetOwners>(_ => _owners!.Read(Self, Sender));
        Receive<Akka.DistributedData.GetSuccess>(g =>
        {
            ((IActorRef)g.Request!).Tell(new GuestOwners(OwnershipRegistry.Owners(g)));
        });
        Receive<Akka.DistributedData.NotFound>(n => ((IActorRef)n.Request!).Tell(new GuestOwners(new Dictionary<string, string>())));
        Receive<Akka.DistributedData.UpdateSuccess>(_ => { });
        Receive<MigrationProgress>(p =>
        {
            _progress[p.MigrationId] = p;
            OnProgressForMetrics(p);
        });
        Receive<IncomingTraffic>(OnIncomingTraffic);
        Receive<MigrationFinished>(_ => { }); // MigrationEnded carries the same report
        Receive<Ownership.ClaimResult>(r =>
        {
            if (r.Kind == Ownership.ClaimKind.Reclaim)
            {
                OnReclaimed(r);
            }
            else
            {
                OnCreationRecorded(r);
            }
        });
        ReceiveReclaims();
        ReceiveCustody();
        ReceiveCordon();
    }

    /// <param name="store">Where the guests live, outliving this actor (NodeHost's, so a new incarnation adopts them);
    /// null = a store of this actor's own, whose guests are disposed when it stops.</param>
    public static Props Props(MigrationSettings defaults, GuestStore? store = null) => Akka.Actor.Props.Create(() => new HypervisorNode(defaults, store));

    protected override void PreStart()
    {
        _tls = _defaults.TlsEnabled ? Transport.Channels.ChannelTls.Load(_defaults.TlsCertificate, _defaults.TlsKey, _defaults.TlsCa) : null;
        var socket = ChannelListener.Bind(_defaults.ListenerHost, _defaults.ListenerPort);
        _listenerPort = ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        _listener = Context.ActorOf(ChannelListener.Props(socket, _defaults.HandshakeTimeout, _tls), "listener");
        _owners = new OwnershipRegistry(Context.System);
        SubscribeCordon();
        _ = NodeMemoryPool.Get(Context.System); // created now: populates migration.memory-pool.populate in the background
        _log.Info("node {0}: channel listener on {1}:{2}", _nodeName, _defaults.ListenerHost, _listenerPort);
        foreach (var (id, report) in _store.Reports())
        {
            // The previous incarnation's ended migrations: `status ID` and the migration list answer after a rejoin.
            _started[id] = (report.VmId, report.Destination);
            _finished[id] = report;
        }

        AdoptStoredGuests();
        PublishMetrics();
    }

    /// <summary>An outgoing migration ended: its report answers status queries here and, kept in the store, in a later incarnation.</summary>
    private void RecordFinished(Guid migrationId, MigrationReport report)
    {
        _finished[migrationId] = report;
        _store.RememberReport(migrationId, report);
    }

    protected override void PostStop()
    {
        // With NodeHost's store the guests outlive this incarnation (they are adopted by the next, or disposed by NodeHost).
        if (_ownsStore)
        {
            _store.DisposeAll();
        }
    }

    private void OnCreateGuest(CreateGuest c)
    {
        try
        {
            c.Spec.Validate();
            if (CordonRefusal("new guests") is { } cordoned)
            {
                Sender.Tell(new CommandFailed(cordoned, "cordoned"));
                return;
            }

            if (_guests.ContainsKey(c.Spec.Id) || _incoming.Values.Any(v => v.VmId == c.Spec.Id))
            {
                Sender.Tell(new CommandFailed($"guest {c.Spec.Id} already exists on {_nodeName}", "exists"));
                return;
            }

            // A stopped copy handed over but not yet confirmed resumed elsewhere may still be taken back here: a new
            // guest under its id would be overwritten by that take-back (or would hide it).
            if (_handedOver.FirstOrDefault(h => h.Value.Id == c.Spec.Id) is { Value: not null } held)
            {
                Sender.Tell(new CommandFailed($"guest {c.Spec.Id} is still held on {_nodeName}: its migration {held.Key} handed it over, and the destination's " +
                                              "resume is not confirmed yet; try again once that migration has ended", "exists"));
                return;
            }

            if (LacksMemory(c.Spec.RamBytes, out var why))
            {
                Sender.Tell(new CommandFailed(why, "no-memory"));
                return;
            }

            var guest = GuestFactory.CreateRunning(c.Spec);
            _guests[c.Spec.Id] = new GuestEntry(guest) { State = "running" };
            _store.Add(guest);
            RecordCreatedGuest(c.Spec.Id, Sender); // answers GuestCreated once the record has it (or the write timed out)
            PublishMetrics();
        }
        catch (Exception e) when (e is ArgumentException or IOException or OutOfMemoryException)
        {
            Sender.Tell(new CommandFailed($"cannot create guest {c.Spec.Id}: {e.Message}", "bad-guest"));
        }
    }

    private void OnGetDigests(GetGuestDigests g)
    {
        if (!_guests.TryGetValue(g.VmId, out var entry))
        {
            Sender.Tell(new CommandFailed($"unknown guest {g.VmId} on {_nodeName}", "unknown-guest"));
            return;
        }

        var guest = entry.Guest;
        var sender = Sender;
        // The pattern check and the digests read a consistent image only while the workload does not write: a guest
        // dirtying GiB/s moves its cursor past pages the checker has read (a torn read, "12 after 11"). Pause it for the
        // check unless a migration owns its pausing (then the caller gets the image as it is).
        var pause = entry.MigrationId is null;
        Task.Run(() =>
        {
            if (pause)
            {
                guest.Workload.Pause();
            }

            try
            {
                var check = WorkloadPatternChecker.Check(guest.Blocks);
                return new GuestDigests(guest.Id, guest.RamDigests(), guest.Devices.Select(d => d.ComputeDigest().ToString("x32")).ToArray(), check.Ok, check.Message);
            }
            finally
            {
                if (pause)
                {
                    guest.Workload.Resume();
                }
            }
        }).PipeTo(sender);
    }

    private void OnStartMigration(StartMigration s)
    {
        if (s.MigrationId is { } asked && AnswerKnownStart(s, asked))
        {
            return;
        }

        if (!_guests.TryGetValue(s.VmId, out var entry))
        {
            Sender.Tell(new CommandFailed($"unknown guest {s.VmId} on {_nodeName}", "unknown-guest"));
            return;
        }

        if (entry.State == UnconfirmedState)
        {
            Sender.Tell(new CommandFailed($"guest {s.VmId} on {_nodeName} waits for the ownership record to confirm that it runs here", "unconfirmed"));
            return;
        }

        if (entry.MigrationId is { } running)
        {
            Sender.Tell(new CommandFailed($"guest {s.VmId} is already migrating (migration {running})", "already-migrating"));
            return;
        }

        if (string.Equals(s.DestinationNode.TrimEnd('/'), _nodeName, StringComparison.Ordinal))
        {
            Sender.Tell(new CommandFailed($"guest {s.VmId} already runs on {_nodeName}", "same-node"));
            return;
        }

        if (IsCordoned(s.DestinationNode))
        {
            Sender.Tell(new CommandFailed($"destination {s.DestinationNode} is cordoned (being drained); `uncordon` lifts it", "cordoned"));
            return;
        }

        try
        {
            s.Settings.Validate();
        }
        catch (ArgumentException e)
        {
            Sender.Tell(new CommandFailed(e.Message, "bad-settings"));
            return;
        }

        WarmSerialization();
        var id = s.MigrationId ?? Guid.NewGuid();
        var coordinator = Context.ActorOf(MigrationCoordinator.Props(id, entry.Guest, s.DestinationNode, _nodeName, s.Settings, s.Subscriber, _tls), $"migration-{id:N}");
        // The node follows its migrations' progress too, to answer status queries.
        coordinator.Tell(new SubscribeMigration(id, Self));
        entry.MigrationId = id;
        entry.State = "migrating";
        _store.MigrationStarted(s.VmId, id, s.DestinationNode);
        _handovers.Started(id);
        _started[id] = (s.VmId, s.DestinationNode);
        _outgoing[id] = coordinator;
        Context.Watch(coordinator);
        RememberWatcher(id, s.Subscriber);
        Sender.Tell(new MigrationStarted(id, s.VmId));
    }

    /// <summary>
    /// A StartMigration with the caller's id: true (answered) if the id is empty, in use here for another guest or
    /// direction, or already this guest's migration (answered MigrationStarted again, the subscriber then gets its
    /// progress or its MigrationFinished). False: a new id, to be started as usual.
    /// </summary>
    private bool AnswerKnownStart(StartMigration s, Guid asked)
    {
        if (asked == Guid.Empty)
        {
            Sender.Tell(new CommandFailed($"migration id {asked}: expected a new, non-empty id or none", "bad-settings"));
            return true;
        }

        if (_incoming.ContainsKey(asked))
        {
            Sender.Tell(new CommandFailed($"migration id {asked} is an incoming migration on {_nodeName}, not one of its guests leaving", "bad-settings"));
            return true;
        }

        if (!_started.TryGetValue(asked, out var known))
        {
            return false;
        }

        if (!string.Equals(known.VmId, s.VmId, StringComparison.Ordinal) || !string.Equals(known.Destination.TrimEnd('/'), s.DestinationNode.TrimEnd('/'), StringComparison.Ordinal))
        {
            Sender.Tell(new CommandFailed($"migration id {asked} is already guest {known.VmId}'s migration to {known.Destination} on {_nodeName}, not {s.VmId} to {s.DestinationNode}", "bad-settings"));
            return true;
        }

        Sender.Tell(new MigrationStarted(asked, s.VmId));
        if (s.Subscriber is { } subscriber && !subscriber.IsNobody())
        {
            Self.Tell(new SubscribeMigration(asked, subscriber)); // its progress, or MigrationFinished if it ended
        }

        return true;
    }

    /// <summary>
    /// Before a migration starts or is received: the control-plane messages of its downtime must not pay Hyperion's
    /// code generation (lost whenever an extension made Akka reload the system's Serialization; SerializationWarmup).
    /// </summary>
    private void WarmSerialization()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        if (SerializationWarmup.EnsureWarm(Context.System, Self))
        {
            _log.Info("control-plane serialization warmed again before a migration ({0:0} ms): Akka had reloaded it", sw.Elapsed.TotalMilliseconds);
        }
    }

    private void OnPrepareIncoming(PrepareIncoming p)
    {
        if (_incoming.ContainsKey(p.MigrationId) || _outgoing.ContainsKey(p.MigrationId) || _finished.ContainsKey(p.MigrationId))
        {
            Sender.Tell(new PrepareRefused(p.MigrationId, $"migration {p.MigrationId} is already known on {_nodeName}"));
            return;
        }

        if (CordonRefusal("incoming migrations") is { } cordoned)
        {
            Sender.Tell(new PrepareRefused(p.MigrationId, cordoned));
            return;
        }

        DiscardSupersededIncoming(p);
        if (_guests.ContainsKey(p.Spec.Id) || _incoming.Values.Any(v => v.VmId == p.Spec.Id))
        {
            Sender.Tell(new PrepareRefused(p.MigrationId, $"guest {p.Spec.Id} already exists on {_nodeName}"));
            return;
        }

        if (!IncomingAdmission.TryAdmit(p, _defaults, MemoryCapacity, out var effective, out var refusal))
        {
            Sender.Tell(new PrepareRefused(p.MigrationId, refusal));
            return;
        }

        if (LacksMemory(p.Spec.RamBytes, out var why))
        {
            Sender.Tell(new PrepareRefused(p.MigrationId, why));
            return;
        }

        WarmSerialization();
        var actor = Context.ActorOf(IncomingMigration.Props(p, effective, _listener, _defaults.ListenerHost, _listenerPort, _nodeName, _tls is not null), $"incoming-{p.MigrationId:N}");
        _incoming[p.MigrationId] = (p.Spec.Id, actor, p.Spec.RamBytes, p.Source);
        Context.Watch(actor);
    }

    private void OnHandedOver(GuestHandedOver h)
    {
        _handovers.HandedOver(h.MigrationId);
        _store.Released(h.VmId, h.MigrationId);
        if (_guests.Remove(h.VmId, out var entry))
        {
            // The destination verified the guest: it is no longer ours. The workload is already paused;
            // the RAM is released once the coordinator is done with it (MigrationEnded).
            _handedOver[h.MigrationId] = entry.Guest;
        }
    }

    private readonly Dictionary<Guid, GuestVm> _handedOver = new();

    private void OnMigrationEnded(MigrationEnded e)
    {
        _outgoing.Remove(e.MigrationId);
        _watchers.Remove(e.MigrationId);
        _handovers.Ended(e.MigrationId, e.HandedOver);
        RecordFinished(e.MigrationId, e.Report);
        _progress.Remove(e.MigrationId);
        PruneHistory();
        if (_handedOver.Remove(e.MigrationId, out var gone) && !e.HandedOver)
        {
            // Released on DestinationVerified, then taken back through the ownership record: it runs here again.
            TookBack(e.MigrationId, gone);
        }
        else if (gone is not null)
        {
            _store.Remove(gone);
            gone.Release(NodeMemoryPool.Get(Context.System).Pool); // touched memory for a later incoming guest
        }
        else if (_guests.TryGetValue(e.VmId, out var entry))
        {
            _store.MigrationEnded(e.VmId, e.MigrationId);
            entry.MigrationId = null;
            entry.State = "running";
        }

        OnEndedForMetrics(e);
        Context.Stop(Sender);
    }

    private void Forward(Guid migrationId, object message)
    {
        if (_outgoing.TryGetValue(migrationId, out var c))
        {
            c.Forward(message);
        }
        else if (_handedOver.ContainsKey(migrationId))
        {
            AnswerInCustody(migrationId, message); // its coordinator died after the hand-over (HypervisorNode.Custody.cs)
        }
        else if (_finished.ContainsKey(migrationId))
        {
            Sender.Tell(new CommandFailed($"migration {migrationId} has ended", "ended"));
        }
        else
        {
            Sender.Tell(new CommandFailed($"unknown migration {migrationId} on {_nodeName}", "unknown-migration"));
        }
    }

    /// <summary>Guest memory this node may hold: node-memory-capacity, or the machine's memory when 0.</summary>
    private long MemoryCapacity => _defaults.NodeMemoryCapacity > 0 ? _defaults.NodeMemoryCapacity : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>True (with the reason) if <paramref name="ramBytes"/> more guest RAM would exceed the node's capacity.</summary>
    private bool LacksMemory(long ramBytes, out string reason)
    {
        var capacity = MemoryCapacity;
        var used = MemoryUsed();
        if (used + ramBytes <= capacity)
        {
            NodeMemoryPool.Get(Context.System).Pool.Trim(capacity - used - ramBytes); // guests + pool within capacity
            reason = "";
            return false;
        }

        reason = $"destination {_nodeName} lacks memory: {ByteSize.Format(ramBytes)} of guest RAM requested, " +
                 $"{ByteSize.Format(Math.Max(0, capacity - used))} free of {ByteSize.Format(capacity)}";
        return true;
    }

    /// <summary>Keeps the reports of the last 100 ended migrations (status queries), not an ever-growing history.</summary>
    private void PruneHistory()
    {
        foreach (var old in _finished.Keys.Where(k => !_outgoing.ContainsKey(k)).Take(Math.Max(0, _finished.Count - 100)).ToArray())
        {
            _finished.Remove(old);
            _started.Remove(old);
        }
    }

    private NodeList Nodes()
    {
        var state = Akka.Cluster.Cluster.Get(Context.System).State;
        return new NodeList(state.Members
            .Where(m => m.HasRole("hypervisor"))
            .Select(m => new NodeInfo(
                m.Roles.FirstOrDefault(r => r.StartsWith(NodeHost.NameRolePrefix, StringComparison.Ordinal))?[NodeHost.NameRolePrefix.Length..] ?? m.Address.ToString(),
                m.Address.ToString(),
                m.Status.ToString(),
                !state.Unreachable.Contains(m),
                m.Roles.ToArray()))
            .ToArray());
    }

    private MigrationList Migrations() => new(_started.Select(kv =>
    {
        _finished.TryGetValue(kv.Key, out var report);
        _progress.TryGetValue(kv.Key, out var progress);
        return new MigrationInfo(kv.Key, kv.Value.VmId, _nodeName, kv.Value.Destination,
            report?.Status ?? progress?.Phase ?? "setup", progress, report);
    }).ToArray());

    // Guid.Empty marks an unconfirmed guest that no migration holds (HypervisorNode.Reclaim.cs): no migration to show.
    private GuestInfo Info(GuestEntry e) => new(e.Guest.Id, _nodeName, e.State, e.Guest.Spec.RamBytes, e.Guest.Devices.Count,
        e.MigrationId is { } m && m != Guid.Empty ? m.ToString() : null,
        e.Guest.Workload.ThrottlePercent);

    private sealed class GuestEntry(GuestVm guest)
    {
        public GuestVm Guest { get; } = guest;
        public string State { get; set; } = "running";
        public Guid? MigrationId { get; set; }
    }
}
