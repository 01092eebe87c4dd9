using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Ownership;
using Migration.Devices.Device;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>
/// A copy of a guest that this node holds without knowing whether it still owns it runs again only once a majority
/// confirmed a new epoch naming this node (ClaimKind.Reclaim, ReclaimDecision); a copy the record gives to another node
/// is discarded and its memory freed; while the record cannot be read the copy stays paused and the claim is retried
/// every second, never resumed blind (docs/architecture.md, "Ownership rules"). Two callers: a new incarnation adopting
/// the previous one's guests (<see cref="AdoptStoredGuests"/>) and a coordinator that died with the guest stopped
/// (<see cref="MigrationChildFailures"/>). The claims are children of the node, their ClaimResults and the retry
/// <see cref="Tick"/> come back to the node as messages, which hands them here. Called on the node's thread only.
/// </summary>
internal sealed class GuestReclaim(IActorContext context, ILoggingAdapter log, string nodeName, GuestStore store, GuestRegistry guests,
    OutgoingMigrations outgoing, NodeMetricsFeed metrics, Func<ITimerScheduler> timers)
{
    private const string RetryTimer = "ReclaimTick";
    private static readonly TimeSpan ReclaimRetry = TimeSpan.FromSeconds(1);
    private readonly Dictionary<string, PendingReclaim> _reclaims = new(StringComparer.Ordinal);

    /// <summary>The node's retry timer message: ask the record again for the guests that wait.</summary>
    internal sealed record Tick : INoSerializationVerificationNeeded
    {
        public static readonly Tick Instance = new();
    }

    /// <param name="Guest">The copy, paused; in the registry as <see cref="HypervisorNode.UnconfirmedState"/> meanwhile.</param>
    /// <param name="MigrationId">The outgoing migration that was cut off (its coordinator died), if any.</param>
    /// <param name="AfterRestart">True: adopted by a new incarnation; false: its coordinator died in this one.</param>
    /// <param name="Why">What cut the migration off (for the report), if there was one.</param>
    private sealed record PendingReclaim(GuestVm Guest, Guid? MigrationId, string Destination, bool AfterRestart, string Why)
    {
        public bool Asking { get; set; }
    }

    /// <summary>
    /// Runs in the node's PreStart. Every guest the store holds ran (or was held paused) on this node when its previous
    /// ActorSystem terminated; while this node was removed, ownership of any of them may have moved (a destination that
    /// resumed it, a source that took it back). So none runs on blind: each is paused, listed as unconfirmed, and claimed
    /// in the record (<see cref="ClaimKind.Reclaim"/>) once this incarnation is an Up member: it runs on if a majority
    /// confirms a new epoch naming this node, and is discarded (memory freed) if the record names another node. An
    /// outgoing migration that was running ends as failed or handed-over accordingly (its coordinator died with the old
    /// system). With a store of its own (no previous incarnation) there is nothing to adopt.
    /// </summary>
    public void AdoptStoredGuests()
    {
        foreach (var stored in store.Snapshot())
        {
            var guest = stored.Guest;
            var why = stored.MigrationId is { } id
                ? $"migration {id} of {guest.Id}: {nodeName} was removed from the cluster during the migration and restarted"
                : "";
            log.Warning("node {0}: guest {1} from the previous incarnation of this node ({2}) is paused until the ownership record confirms it",
                nodeName, guest.Id, stored.State);
            Begin(guest, stored.MigrationId, stored.Destination ?? "", afterRestart: true, why);
        }
    }

    /// <summary>
    /// Pauses <paramref name="guest"/> and holds it as unconfirmed (listed, counted against memory, not migratable; the
    /// registry entry carries a migration id so that no digest request resumes it) until the record decides.
    /// </summary>
    public void Begin(GuestVm guest, Guid? migrationId, string destination, bool afterRestart, string why)
    {
        guest.Workload.Pause();
        guests.HoldUnconfirmed(guest, migrationId);
        _reclaims[guest.Id] = new PendingReclaim(guest, migrationId, destination, afterRestart, why);
        AskRecord();
    }

    /// <summary>
    /// A majority read is only meaningful once this node is an Up member and its Replicator knows every Up hypervisor
    /// member: a new incarnation that has not been admitted yet would otherwise read a "majority" of itself alone.
    /// Asks the Replicator how many replicas it knows (<see cref="OnReplicaCount"/> goes on). Also the retry tick's handler.
    /// </summary>
    public void AskRecord()
    {
        if (_reclaims.Count == 0)
        {
            return;
        }

        if (Akka.Cluster.Cluster.Get(context.System).SelfMember.Status != MemberStatus.Up)
        {
            ArmRetry();
            return;
        }

        DistributedData.Get(context.System).Replicator.Tell(Dsl.GetReplicaCount);
    }

    public void OnReplicaCount(ReplicaCount count)
    {
        var up = Akka.Cluster.Cluster.Get(context.System).State.Members.Count(m => m.Status == MemberStatus.Up && m.HasRole("hypervisor"));
        if (count.N < Math.Max(1, up))
        {
            log.Info("node {0}: the ownership record knows {1} of {2} Up hypervisor nodes; {3} guest(s) wait for it, paused", nodeName, count.N, up, _reclaims.Count);
            ArmRetry();
            return;
        }

        var timeout = OwnershipSettings.From(context.System.Settings.Config).MajorityTimeout;
        foreach (var pending in _reclaims.Values.Where(p => !p.Asking))
        {
            pending.Asking = true;
            context.ActorOf(OwnershipClaim.Props(pending.Guest.Id, ClaimKind.Reclaim, GuestEpoch.None, nodeName, timeout));
        }
    }

    /// <summary>The record's answer to a <see cref="ClaimKind.Reclaim"/> claim: run, discard, or ask again.</summary>
    public void OnReclaimed(ClaimResult r)
    {
        if (!_reclaims.TryGetValue(r.VmId, out var pending))
        {
            return;
        }

        pending.Asking = false;
        switch (ReclaimDecision.Decide(r, nodeName))
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
                log.Warning("node {0}: guest {1} stays paused: its ownership is not decided ({2}); asking again in {3} s",
                    nodeName, r.VmId, r.Detail, ReclaimRetry.TotalSeconds);
                ArmRetry();
                break;
        }
    }

    /// <summary>
    /// Runs a stopped guest on this node again: devices back to running (a save cut off by a dead coordinator left them
    /// stopped), then the workload. Returns how long the guest was paused (its downtime, for the report).
    /// </summary>
    public TimeSpan ResumeHere(GuestVm guest)
    {
        foreach (var d in guest.Devices)
        {
            try
            {
                DeviceRecovery.ReturnToRunning(d);
            }
            catch (Exception e)
            {
                log.Error("node {0}: guest {1}: device {2} did not return to running: {3}", nodeName, guest.Id, d.Identity.Id, e.Message);
            }
        }

        return guest.Workload.Resume();
    }

    private void ArmRetry()
    {
        var scheduler = timers();
        if (!scheduler.IsTimerActive(RetryTimer))
        {
            scheduler.StartSingleTimer(RetryTimer, Tick.Instance, ReclaimRetry);
        }
    }

    /// <summary>Ours at a new majority-confirmed epoch: devices back to running (a save may have been cut off), workload resumed.</summary>
    private void RunReclaimed(PendingReclaim p, GuestEpoch epoch)
    {
        var guest = p.Guest;
        var pausedFor = ResumeHere(guest);
        guests.Run(guest);
        if (p.MigrationId is { } id)
        {
            store.MigrationEnded(guest.Id, id);
            outgoing.EndWithoutCoordinator(id, guest.Id, p.Destination, p.AfterRestart, handedOver: false,
                $"{p.Why}; the guest keeps running on {nodeName} (ownership {epoch})", pausedFor);
            // Only now: a destination told to discard before this claim won could still have been claiming (then neither would run it).
            if (p.Destination.Length > 0)
            {
                context.ActorSelection($"{p.Destination.TrimEnd('/')}/user/node").Tell(new AbortIncoming(id, $"{p.Why}; the source kept the guest"));
            }
        }

        log.Warning("node {0}: guest {1} runs here: a majority confirmed {2}", nodeName, guest.Id, epoch);
    }

    /// <summary>The record gives the guest to another node (a destination that resumed it, or a source that took it back).</summary>
    private void DiscardReclaimed(PendingReclaim p, GuestEpoch epoch)
    {
        var guest = p.Guest;
        guests.Remove(guest.Id);
        store.Remove(guest);
        guest.Release(NodeMemoryPool.Get(context.System).Pool); // this copy was the only user of its RAM: the migration ended
        if (p.MigrationId is { } id)
        {
            outgoing.EndWithoutCoordinator(id, guest.Id, p.Destination, p.AfterRestart, handedOver: true,
                $"{p.Why}; the ownership record gives the guest to {epoch.Owner} ({epoch})");
        }

        log.Warning("node {0}: discarded its copy of guest {1}: the ownership record says {2}", nodeName, guest.Id, epoch);
        metrics.Publish();
    }
}
