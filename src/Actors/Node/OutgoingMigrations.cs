using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Source;

namespace Migration.Actors.Node;

/// <summary>
/// The node's outgoing migrations: the coordinator of each running one, who follows it (told MigrationFinished if its
/// coordinator dies), and the <see cref="HandoverLedger"/> of what became of each one's guest (QueryHandover). Every
/// end of an outgoing migration goes through here: <see cref="Ended"/> when its coordinator reports MigrationEnded,
/// <see cref="EndWithoutCoordinator"/> when the coordinator is gone (it died, or died with the previous incarnation).
/// Owned by the <see cref="HypervisorNode"/> and called on its thread only (no locks); the node creates, watches and
/// stops the coordinators.
/// </summary>
internal sealed class OutgoingMigrations(string nodeName, MigrationHistory history)
{
    private readonly Dictionary<Guid, IActorRef> _coordinators = new();
    private readonly Dictionary<Guid, List<IActorRef>> _watchers = new();
    private readonly HandoverLedger _handovers = new();

    public int Count => _coordinators.Count;

    public bool IsRunning(Guid migrationId) => _coordinators.ContainsKey(migrationId);

    public bool TryGetCoordinator(Guid migrationId, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out IActorRef coordinator) =>
        _coordinators.TryGetValue(migrationId, out coordinator);

    /// <summary>The running migrations whose coordinator is <paramref name="actor"/> (a watched child that terminated).</summary>
    public Guid[] CoordinatedBy(IActorRef actor) => _coordinators.Where(o => o.Value.Equals(actor)).Select(o => o.Key).ToArray();

    /// <summary>A coordinator was created for <paramref name="migrationId"/>; it owns the guest. The starter follows it.</summary>
    public void Started(Guid migrationId, string vmId, string destination, IActorRef coordinator, IActorRef? starter)
    {
        _handovers.Started(migrationId);
        history.Started(migrationId, vmId, destination);
        _coordinators[migrationId] = coordinator;
        RememberWatcher(migrationId, starter);
    }

    /// <summary>Someone follows this outgoing migration (the starter, or a later SubscribeMigration): told if its coordinator dies.</summary>
    public void RememberWatcher(Guid migrationId, IActorRef? watcher)
    {
        if (watcher is null || watcher.IsNobody())
        {
            return;
        }

        if (!_watchers.TryGetValue(migrationId, out var list))
        {
            _watchers[migrationId] = list = [];
        }

        list.Add(watcher);
    }

    /// <summary>The coordinator released the guest to the destination (GuestHandedOver).</summary>
    public void HandedOver(Guid migrationId) => _handovers.HandedOver(migrationId);

    /// <summary>A handed-over guest was taken back with a majority-confirmed epoch: the ledger says KeptBySource from now on.</summary>
    public void TakenBack(Guid migrationId) => _handovers.TakenBack(migrationId);

    /// <summary>The answer to QueryHandover (a pure read).</summary>
    public HandoverDecision Decide(Guid migrationId) => _handovers.Decide(migrationId);

    /// <summary>The coordinator reported MigrationEnded (its subscribers heard the report from it).</summary>
    public void Ended(MigrationEnded e)
    {
        _coordinators.Remove(e.MigrationId);
        _watchers.Remove(e.MigrationId);
        _handovers.Ended(e.MigrationId, e.HandedOver);
        history.Finished(e.MigrationId, e.Report);
        history.Prune(IsRunning);
    }

    /// <summary>The coordinator of <paramref name="migrationId"/> terminated without MigrationEnded: no longer running.</summary>
    public void CoordinatorDied(Guid migrationId) => _coordinators.Remove(migrationId);

    /// <summary>
    /// The report of a migration whose coordinator is gone (this incarnation's died, or the previous incarnation's:
    /// <paramref name="previousIncarnation"/>, then it is entered in the ledger and history first); its watchers get it.
    /// <paramref name="pausedFor"/>: how long the guest was paused here before it resumed here (its downtime); zero when
    /// it did not resume here (the destination runs it and only it knows when).
    /// </summary>
    public void EndWithoutCoordinator(Guid migrationId, string vmId, string destination, bool previousIncarnation, bool handedOver, string reason,
        TimeSpan pausedFor = default)
    {
        if (previousIncarnation)
        {
            _handovers.Started(migrationId);
            history.Started(migrationId, vmId, destination);
        }

        _handovers.Ended(migrationId, handedOver);
        var report = new MigrationReport
        {
            MigrationId = migrationId,
            VmId = vmId,
            Source = nodeName,
            Destination = destination,
            Status = handedOver ? "handed-over" : "failed",
            Error = reason,
            DowntimeMs = pausedFor.TotalMilliseconds,
        };
        history.Finished(migrationId, report);
        if (_watchers.Remove(migrationId, out var watchers))
        {
            foreach (var w in watchers)
            {
                w.Tell(new MigrationFinished(report));
            }
        }
    }
}
