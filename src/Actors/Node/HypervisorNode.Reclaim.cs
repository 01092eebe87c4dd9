using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Devices.Device;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

// A copy of a guest that this node holds without knowing whether it still owns it runs again only once a majority
// confirmed a new epoch naming this node (ClaimKind.Reclaim, ReclaimDecision); a copy the record gives to another node
// is discarded and its memory freed; while the record cannot be read the copy stays paused and the claim is retried
// every second, never resumed blind (docs/architecture.md, "Ownership rules"). Two callers: a new incarnation adopting
// the previous one's guests (HypervisorNode.Adoption.cs) and a coordinator that died with the guest stopped
// (HypervisorNode.ChildFailures.cs). All state here is the node's, touched on its thread.
public sealed partial class HypervisorNode : IWithTimers
{
    /// <summary>The `vm list` state of a copy whose ownership is being asked of the record.</summary>
    public const string UnconfirmedState = "unconfirmed";

    private static readonly TimeSpan ReclaimRetry = TimeSpan.FromSeconds(1);
    private readonly Dictionary<string, PendingReclaim> _reclaims = new(StringComparer.Ordinal);

    /// <summary>The node's timers (set by Akka before PreStart): the reclaim retry only.</summary>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="Guest">The copy, paused; in the registry as <see cref="UnconfirmedState"/> meanwhile.</param>
    /// <param name="MigrationId">The outgoing migration that was cut off (its coordinator died), if any.</param>
    /// <param name="AfterRestart">True: adopted by a new incarnation; false: its coordinator died in this one.</param>
    /// <param name="Why">What cut the migration off (for the report), if there was one.</param>
    private sealed record PendingReclaim(GuestVm Guest, Guid? MigrationId, string Destination, bool AfterRestart, string Why)
    {
        public bool Asking { get; set; }
    }

    private sealed record ReclaimTick : INoSerializationVerificationNeeded
    {
        public static readonly ReclaimTick Instance = new();
    }

    private void ReceiveReclaims()
    {
        Receive<ReclaimTick>(_ => AskRecordForReclaims());
        Receive<ReplicaCount>(OnReplicaCount);
    }

    /// <summary>
    /// Pauses <paramref name="guest"/> and holds it as unconfirmed (listed, counted against memory, not migratable; the
    /// registry entry carries a migration id so that no digest request resumes it) until the record decides.
    /// </summary>
    private void BeginReclaim(GuestVm guest, Guid? migrationId, string destination, bool afterRestart, string why)
    {
        guest.Workload.Pause();
        _guests[guest.Id] = new GuestEntry(guest) { State = UnconfirmedState, MigrationId = migrationId ?? Guid.Empty };
        _reclaims[guest.Id] = new PendingReclaim(guest, migrationId, destination, afterRestart, why);
        AskRecordForReclaims();
    }

    /// <summary>
    /// A majority read is only meaningful once this node is an Up member and its Replicator knows every Up hypervisor
    /// member: a new incarnation that has not been admitted yet would otherwise read a "majority" of itself alone.
    /// Asks the Replicator how many replicas it knows (<see cref="OnReplicaCount"/> goes on).
    /// </summary>
    private void AskRecordForReclaims()
    {
        if (_reclaims.Count == 0)
        {
            return;
        }

        if (Akka.Cluster.Cluster.Get(Context.System).SelfMember.Status != MemberStatus.Up)
        {
            ArmReclaimTick();
            return;
        }

        DistributedData.Get(Context.System).Replicator.Tell(Dsl.GetReplicaCount);
    }

    private void OnReplicaCount(ReplicaCount count)
    {
        var up = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m => m.Status == MemberStatus.Up && m.HasRole("hypervisor"));
        if (count.N < Math.Max(1, up))
        {
            _log.Info("node {0}: the ownership record knows {1} of {2} Up hypervisor nodes; {3} guest(s) wait for it, paused", _nodeName, count.N, up, _reclaims.Count);
            ArmReclaimTick();
            return;
        }

        var timeout = OwnershipSettings.From(Context.System.Settings.Config).MajorityTimeout;
        foreach (var pending in _reclaims.Values.Where(p => !p.Asking))
        {
            pending.Asking = true;
            Context.ActorOf(OwnershipClaim.Props(pending.Guest.Id, ClaimKind.Reclaim, GuestEpoch.None, _nodeName, timeout));
        }
    }

    private void ArmReclaimTick()
    {
        if (!Timers.IsTimerActive(nameof(ReclaimTick)))
        {
            Timers.StartSingleTimer(nameof(ReclaimTick), ReclaimTick.Instance, ReclaimRetry);
        }
    }

    private void OnReclaimed(ClaimResult r)
    {
        if (!_reclaims.TryGetValue(r.VmId, out var pending))
        {
            return;
        }

        pending.Asking = false;
        switch (ReclaimDecision.Decide(r, _nodeName))
        {
            case ReclaimVerdict.Run:
                _reclaims.Remove(r.VmId);
                RunReclaimed(pending, r.Current);
                break;
            case ReclaimVerdict.Discard:
                _reclaims.Remove(r.VmId);
                DiscardReclaimed(pending, r.Current);
                break;
            default:
                _log.Warning("node {0}: guest {1} stays paused: its ownership is not decided ({2}); asking again in {3} s",
                    _nodeName, r.VmId, r.Detail, ReclaimRetry.TotalSeconds);
                ArmReclaimTick();
                break;
        }
    }

    /// <summary>
    /// Runs a stopped guest on this node again: devices back to running (a save cut off by a dead coordinator left them
    /// stopped), then the workload. Returns how long the guest was paused (its downtime, for the report).
    /// </summary>
    private TimeSpan ResumeHere(GuestVm guest)
    {
        foreach (var d in guest.Devices)
        {
            try
            {
                DeviceRecovery.ReturnToRunning(d);
            }
            catch (Exception e)
            {
                _log.Error("node {0}: guest {1}: device {2} did not return to running: {3}", _nodeName, guest.Id, d.Identity.Id, e.Message);
            }
        }

        return guest.Workload.Resume();
    }

    /// <summary>Ours at a new majority-confirmed epoch: devices back to running (a save may have been cut off), workload resumed.</summary>
    private void RunReclaimed(PendingReclaim p, GuestEpoch epoch)
    {
        var guest = p.Guest;
        var pausedFor = ResumeHere(guest);
        _guests[guest.Id] = new GuestEntry(guest) { State = "running" };
        if (p.MigrationId is { } id)
        {
            _store.MigrationEnded(guest.Id, id);
            EndCutOffMigration(p, handedOver: false,
                $"{p.Why}; the guest keeps running on {_nodeName} (ownership {epoch})", pausedFor);
            // Only now: a destination told to discard before this claim won could still have been claiming (then neither would run it).
            if (p.Destination.Length > 0)
            {
                Context.ActorSelection($"{p.Destination.TrimEnd('/')}/user/node").Tell(new AbortIncoming(id, $"{p.Why}; the source kept the guest"));
            }
        }

        _log.Warning("node {0}: guest {1} runs here: a majority confirmed {2}", _nodeName, guest.Id, epoch);
    }

    /// <summary>The record gives the guest to another node (a destination that resumed it, or a source that took it back).</summary>
    private void DiscardReclaimed(PendingReclaim p, GuestEpoch epoch)
    {
        var guest = p.Guest;
        _guests.Remove(guest.Id);
        _store.Remove(guest);
        guest.Release(NodeMemoryPool.Get(Context.System).Pool); // this copy was the only user of its RAM: the migration ended
        if (p.MigrationId is { } id)
        {
            EndCutOffMigration(p, handedOver: true, $"{p.Why}; the ownership record gives the guest to {epoch.Owner} ({epoch})");
        }

        _log.Warning("node {0}: discarded its copy of guest {1}: the ownership record says {2}", _nodeName, guest.Id, epoch);
        PublishMetrics();
    }

    /// <summary>
    /// The report of a migration whose coordinator is gone (this incarnation's died, or the previous incarnation's).
    /// <paramref name="pausedFor"/>: how long the guest was paused here before it resumed here (its downtime); zero
    /// when it did not resume here (the destination runs it and only it knows when).
    /// </summary>
    private void EndCutOffMigration(PendingReclaim p, bool handedOver, string reason, TimeSpan pausedFor = default)
    {
        var id = p.MigrationId!.Value;
        if (p.AfterRestart)
        {
            _handovers.Started(id);
            _started[id] = (p.Guest.Id, p.Destination);
        }

        _handovers.Ended(id, handedOver);
        var report = new MigrationReport
        {
            MigrationId = id,
            VmId = p.Guest.Id,
            Source = _nodeName,
            Destination = p.Destination,
            Status = handedOver ? "handed-over" : "failed",
            Error = reason,
            DowntimeMs = pausedFor.TotalMilliseconds,
        };
        RecordFinished(id, report);
        _progress.Remove(id);
        if (_watchers.Remove(id, out var watchers))
        {
            foreach (var w in watchers)
            {
                w.Tell(new MigrationFinished(report));
            }
        }
    }
}
