using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Drain;

/// <summary>
/// Runs host drains for the whole cluster: a cluster singleton (one instance, on the oldest hypervisor node; every node
/// has a proxy at /user/drain), so a drain goes on when the CLI that started it exits. It cordons the node (in
/// <see cref="CordonRegistry"/>), starts each guest's migration with the ordinary StartMigration to the source node,
/// follows it as a subscriber (MigrationProgress / MigrationFinished), and lets <see cref="DrainBook"/> decide what starts
/// next, where, and what a failure means. Its records are replicated (<see cref="DrainStore"/>): a coordinator started on
/// another node after the old one's node died reads them and carries on.
/// States: Restoring (reading the replicated drains; commands are stashed) -> Ready. All state is touched only on this
/// actor's thread: replies of other nodes and of the replicator come back as messages (PipeTo, DrainSelfMessages.cs).
/// Plain collaborators, called on this thread only: <see cref="DrainNodes"/> (the hypervisor members, their node actors,
/// their capacities) and <see cref="StartDrainChecks"/> (the refusals of a StartDrain).
/// </summary>
public sealed class DrainCoordinator : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    public const string ManagerName = "drain-coordinator";
    public const string ProxyName = "drain";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly DrainSettings _settings;
    private readonly DrainBook _book = new();
    private readonly CordonRegistry _cordons;
    private readonly DrainStore _store;
    private readonly DrainNodes _nodes;
    private readonly StartDrainChecks _checks;
    private readonly HashSet<string> _preparing = new(StringComparer.Ordinal);
    private readonly HashSet<Guid> _closing = new();
    private bool _snapshotPending;

    public DrainCoordinator(DrainSettings settings)
    {
        _settings = settings;
        _cordons = new CordonRegistry(Context.System);
        _store = new DrainStore(Context.System);
        _nodes = new DrainNodes(Context);
        _checks = new StartDrainChecks(_nodes, _book, _preparing);
        Restoring();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public IStash Stash { get; set; } = null!;

    public static Props Props(DrainSettings settings) => Akka.Actor.Props.Create(() => new DrainCoordinator(settings));

    protected override void PreStart() => _store.LoadAsync().PipeTo(Self, success: d => new Restored(d), failure: e => new Restored([]));

    private void Restoring()
    {
        Receive<Restored>(r =>
        {
            foreach (var d in r.Drains)
            {
                // A StartMigration whose answer the old coordinator never saw is asked for again under the same
                // migration id below (idempotent: the source answers for the migration it already has). A record
                // without an id (written by an older coordinator) goes back to pending.
                _book.Put(d with { Guests = d.Guests.Select(g => g.State == DrainGuest.Starting && g.MigrationId is null ? g with { State = DrainGuest.Pending, Attempts = g.Attempts.Take(g.Attempts.Count - 1).ToArray() } : g).ToArray() });
            }

            if (r.Drains.Count > 0)
            {
                _log.Info("drain coordinator restored {0} drains ({1} running)", r.Drains.Count, r.Drains.Count(d => d.IsRunning));
            }

            Timers.StartPeriodicTimer("check", CheckTick.Instance, _settings.CheckInterval);
            Become(Ready);
            Stash.UnstashAll();
            SendStarts(_book.Unanswered());
            OnCheck();
        });
        ReceiveAny(_ => Stash.Stash());
    }

    private void Ready()
    {
        Receive<StartDrain>(OnStartDrain);
        Receive<DrainPrepared>(OnDrainPrepared);
        Receive<Uncordon>(OnUncordon);
        Receive<GetDrains>(_ =>
        {
            var drains = _book.Drains.ToArray();
            _cordons.ReadAsync().PipeTo(Sender, success: c => new DrainList(drains, c), failure: e => new CommandFailed("cannot read the cordoned nodes: " + e.Message));
        });
        Receive<CheckTick>(_ => OnCheck());
        Receive<CapacitySnapshot>(OnCapacity);
        Receive<StartReply>(OnStartReply);
        Receive<MigrationProgress>(p => _book.Progress(p.MigrationId, p.Percent));
        Receive<MigrationFinished>(OnFinished);
        Receive<CloseCheck>(OnCloseCheck);
        Receive<Akka.DistributedData.IUpdateResponse>(u =>
        {
            if (u is not Akka.DistributedData.UpdateSuccess)
            {
                _log.Warning("drain records not written to a majority ({0}); kept locally and gossiped", u.GetType().Name);
            }

            // Starts are sent once their attempt (with its migration id) is recorded, on a majority if it answered in
            // time, so a coordinator that takes over knows of every migration its predecessor may have started.
            if (u.Request is StartsRecorded r)
            {
                SendStarts(r.Starts.Where(_book.StillStarting).ToArray());
            }
        });
    }

    private void OnStartDrain(StartDrain s)
    {
        if (_checks.Refused(s, Sender))
        {
            return;
        }

        // Cordon first (every reachable node knows it before the answer), then list the guests it runs.
        _preparing.Add(s.Node);
        var replyTo = Sender;
        var node = _nodes.NodeOf(s.Node);
        Prepare(s, node).PipeTo(Self, success: list => new DrainPrepared(s, replyTo, list, null), failure: e => new DrainPrepared(s, replyTo, null, e.Message));
    }

    private async Task<GuestList> Prepare(StartDrain s, ActorSelection node)
    {
        await _cordons.SetAsync(s.Node, cordoned: true).ConfigureAwait(false);
        return await node.Ask<GuestList>(ListGuests.Instance, DrainNodes.AskTimeout).ConfigureAwait(false);
    }

    private void OnDrainPrepared(DrainPrepared p)
    {
        _preparing.Remove(p.Request.Node);
        if (p.Guests is null)
        {
            p.ReplyTo.Tell(new CommandFailed($"cannot drain {p.Request.Node}: {p.Error}", "unreachable"));
            return;
        }

        var guests = p.Guests.Guests.Where(g => g.State == "running").Select(g => DrainBook.NewGuest(g.VmId, g.RamBytes)).ToArray();
        var drain = new DrainStatus(Guid.NewGuid(), p.Request.Node, p.Request.MaxParallel, p.Request.Targets, p.Request.Settings,
            DrainStatus.Running, DateTime.UtcNow, null, guests);
        _book.Put(drain);
        _log.Info("drain {0} of {1}: {2} guests, at most {3} at a time", drain.DrainId, drain.Node, guests.Length, drain.MaxParallel);
        p.ReplyTo.Tell(new DrainStarted(drain));
        Changed();
        OnCheck();
    }

    private void OnUncordon(Uncordon u)
    {
        if (string.IsNullOrWhiteSpace(u.Node))
        {
            Sender.Tell(new CommandFailed("uncordon: empty node address", "bad-settings"));
            return;
        }

        var cancelled = _book.CancelPending(u.Node);
        Changed();
        var replyTo = Sender;
        _cordons.SetAsync(u.Node, cordoned: false).PipeTo(replyTo, success: () => new Uncordoned(u.Node, cancelled),
            failure: e => new CommandFailed($"uncordon {u.Node}: {e.Message}"));
        OnCheck();
    }

    /// <summary>Periodic and after every change: fail drains whose node left, re-follow migrations, close finished drains, start more.</summary>
    private void OnCheck()
    {
        var members = _nodes.HypervisorMembers();
        foreach (var d in _book.Drains.Where(d => d.IsRunning && !_nodes.IsMember(d.Node)).ToArray())
        {
            _book.SourceGone(d.Node, DateTime.UtcNow);
        }

        foreach (var d in _book.Drains.Where(d => d.IsRunning).ToArray())
        {
            // Idempotent: the node answers with the latest progress, or MigrationFinished if it ended (a lost message,
            // or a coordinator that took over from another node).
            foreach (var g in d.Guests.Where(g => g.State == DrainGuest.Migrating))
            {
                _nodes.NodeOf(d.Node).Tell(new SubscribeMigration(g.MigrationId!.Value, Self));
            }

            if (d.Guests.All(g => g.Ended) && _closing.Add(d.DrainId))
            {
                var id = d.DrainId;
                _nodes.NodeOf(d.Node).Ask<GuestList>(ListGuests.Instance, DrainNodes.AskTimeout)
                    .PipeTo(Self, success: l => new CloseCheck(id, l), failure: _ => new CloseCheck(id, null));
            }
        }

        Changed();
        if (!_snapshotPending && _book.WantsToStart(_settings.MaxParallelMigrations))
        {
            _snapshotPending = true;
            _nodes.Capacities(members).PipeTo(Self, success: c => new CapacitySnapshot(c), failure: _ => new CapacitySnapshot([]));
        }
    }

    private void OnCapacity(CapacitySnapshot c)
    {
        _snapshotPending = false;
        var starts = _book.Plan(c.Nodes, _settings.MaxParallelMigrations, DateTime.UtcNow);
        if (!_store.SaveChanged(_book.Drains, Self, starts.Count == 0 ? null : new StartsRecorded(starts)))
        {
            SendStarts(starts);
        }
    }

    /// <summary>Asks each source to start its guest's migration under the id the book chose (idempotent on the source).</summary>
    private void SendStarts(IReadOnlyList<DrainStart> starts)
    {
        foreach (var start in starts)
        {
            var settings = _book.Get(start.DrainId)!.Settings;
            _log.Info("drain {0}: {1} {2} -> {3} (migration {4})", start.DrainId, start.VmId, start.Source, start.Target, start.MigrationId);
            _nodes.NodeOf(start.Source).Ask<object>(new StartMigration(start.VmId, start.Target, settings, Self, start.MigrationId), DrainNodes.AskTimeout * 3)
                .PipeTo(Self, success: r => new StartReply(start, r), failure: e => new StartReply(start, new CommandFailed($"no answer from {start.Source}: {e.Message}")));
        }
    }

    private void OnStartReply(StartReply r)
    {
        if (_book.Get(r.Start.DrainId)?.Guests.FirstOrDefault(g => g.VmId == r.Start.VmId)?.MigrationId != r.Start.MigrationId)
        {
            return; // the answer to an attempt that has ended already (its MigrationFinished came first) or was replanned
        }

        switch (r.Reply)
        {
            case MigrationStarted m:
                _book.Started(r.Start.DrainId, r.Start.VmId, m.MigrationId);
                break;
            case CommandFailed f:
                _book.Ended(r.Start.DrainId, r.Start.VmId, completed: false, $"{r.Start.Source} refused: {f.Reason}", DateTime.UtcNow);
                break;
            default:
                _book.Ended(r.Start.DrainId, r.Start.VmId, completed: false, $"unexpected answer {r.Reply.GetType().Name} from {r.Start.Source}", DateTime.UtcNow);
                break;
        }

        OnCheck();
    }

    private void OnFinished(MigrationFinished f)
    {
        var report = f.Report;
        // By id: every attempt has its id from the moment it is planned, so a MigrationFinished that overtakes the
        // MigrationStarted answer (two senders) finds its guest still starting.
        if (_book.Find(report.MigrationId) is not { } h)
        {
            return; // a duplicate (re-subscription after the end) or not ours
        }

        var completed = report.Status is "completed" or "handed-over";
        _book.Ended(h.DrainId, h.VmId, completed, report.Error ?? report.Status, DateTime.UtcNow);
        _log.Info("drain {0}: {1} {2}", h.DrainId, h.VmId, report.Status);
        OnCheck();
    }

    private void OnCloseCheck(CloseCheck c)
    {
        _closing.Remove(c.DrainId);
        // A guest migrating that is not ours (an operator's migration) may come back: wait for it to end.
        if (c.Guests is null || c.Guests.Guests.Any(g => g.State == "migrating"))
        {
            return;
        }

        var still = c.Guests.Guests.Where(g => g.State == "running").Select(g => (g.VmId, g.RamBytes)).ToArray();
        if (_book.Close(c.DrainId, still, DateTime.UtcNow))
        {
            OnCheck();
        }
        else if (_book.Get(c.DrainId) is { IsRunning: false } d)
        {
            _log.Info("drain {0} of {1} {2}", d.DrainId, d.Node, d.State);
        }

        Changed();
    }

    private void Changed() => _store.SaveChanged(_book.Drains, Self);
}
