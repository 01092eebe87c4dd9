using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

// A new incarnation of the node (after it was downed and rejoined, NodeHost) takes back the guests of the previous one,
// each only as far as the majority ownership record lets it (HypervisorNode.Reclaim.cs).
public sealed partial class HypervisorNode
{
    /// <summary>
    /// Runs in PreStart. Every guest the store holds ran (or was held paused) on this node when its previous ActorSystem
    /// terminated; while this node was removed, ownership of any of them may have moved (a destination that resumed it, a
    /// source that took it back). So none runs on blind: each is paused, listed as unconfirmed, and claimed in the record
    /// (<see cref="Ownership.ClaimKind.Reclaim"/>) once this incarnation is an Up member: it runs on if a majority confirms
    /// a new epoch naming this node, and is discarded (memory freed) if the record names another node. An outgoing
    /// migration that was running ends as failed or handed-over accordingly (its coordinator died with the old system).
    /// With a store of its own (no previous incarnation) there is nothing to adopt.
    /// </summary>
    private void AdoptStoredGuests()
    {
        foreach (var stored in _store.Snapshot())
        {
            var guest = stored.Guest;
            var why = stored.MigrationId is { } id
                ? $"migration {id} of {guest.Id}: {_nodeName} was removed from the cluster during the migration and restarted"
                : "";
            _log.Warning("node {0}: guest {1} from the previous incarnation of this node ({2}) is paused until the ownership record confirms it",
                _nodeName, guest.Id, stored.State);
            BeginReclaim(guest, stored.MigrationId, stored.Destination ?? "", afterRestart: true, why);
        }
    }
}
