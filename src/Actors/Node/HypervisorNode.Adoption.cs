using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Devices.Device;

namespace Migration.Actors.Node;

// A new incarnation of the node (after it was downed and rejoined, NodeHost) takes back the guests of the previous one.
public sealed partial class HypervisorNode
{
    /// <summary>
    /// Runs in PreStart. Every guest the store holds ran on this node when its previous ActorSystem terminated. Rule
    /// (<see cref="RunsHereAfterRestart"/>): a guest that was released to a destination is not ours and is disposed;
    /// every other guest runs on here: its devices go back to running (a save may have been cut off), its workload
    /// resumes if it was stopped for stop-copy, and it is registered and published as owned by this node again. An
    /// outgoing migration that was running ends as failed (its coordinator died with the old system); its
    /// destination is told to discard its copy. With a store of its own (no previous incarnation) there is nothing to adopt.
    /// </summary>
    private void AdoptStoredGuests()
    {
        foreach (var stored in _store.Snapshot())
        {
            var guest = stored.Guest;
            if (!RunsHereAfterRestart(stored))
            {
                _log.Warning("node {0}: guest {1} was released to {2} before this node was removed from the cluster; discarding the local copy",
                    _nodeName, guest.Id, stored.Destination);
                _store.Remove(guest);
                guest.Dispose();
                continue;
            }

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

            if (!guest.Workload.IsRunning)
            {
                guest.Workload.Resume();
            }

            _guests[guest.Id] = new GuestEntry(guest) { State = "running" };
            _owners!.SetOwner(guest.Id, _nodeName);
            if (stored.MigrationId is { } id)
            {
                EndMigrationCutOffByRestart(id, guest.Id, stored.Destination ?? "");
            }

            _log.Warning("node {0}: adopted guest {1} from the previous incarnation of this node; it runs here", _nodeName, guest.Id);
        }
    }

    /// <summary>
    /// Whether a stored guest runs on here after the node restarted. Today: unless it was released to a destination
    /// (the destination verified it and owns it). The hook for a majority-decided handover record: decide here.
    /// </summary>
    private static bool RunsHereAfterRestart(StoredGuest stored) => stored.State != GuestHandoverState.Released;

    private void EndMigrationCutOffByRestart(Guid id, string vmId, string destination)
    {
        var reason = $"migration {id} of {vmId}: {_nodeName} was removed from the cluster during the migration and restarted; " +
                     $"the migration failed and the guest keeps running on {_nodeName}";
        _store.MigrationEnded(vmId, id);
        _handovers.Started(id);
        _handovers.Ended(id, handedOver: false);
        _started[id] = (vmId, destination);
        _finished[id] = new MigrationReport { MigrationId = id, VmId = vmId, Source = _nodeName, Destination = destination, Status = "failed", Error = reason };
        if (destination.Length > 0)
        {
            Context.ActorSelection($"{destination.TrimEnd('/')}/user/node").Tell(new AbortIncoming(id, reason));
        }
    }
}
