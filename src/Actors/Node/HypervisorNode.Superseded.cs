using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

// A destination still discarding a cancelled migration's copy when the source starts the same guest again.
public sealed partial class HypervisorNode
{
    /// <summary>
    /// A source node runs at most one migration per guest, and starts a new one only after the previous one ended. So a
    /// PrepareIncoming for guest G from source node S proves that every incoming migration of G from S still held here
    /// is obsolete: its AbortIncoming may still be on the way (a cancel reports on the source at once). Such a copy is
    /// discarded now (it frees its memory when its actor stops) and no longer blocks the new migration. Copies of G
    /// from another node are left alone: only G's owner may start it, and that case is refused as "already exists".
    /// </summary>
    private void DiscardSupersededIncoming(PrepareIncoming p)
    {
        var source = p.Source.Path.Address;
        foreach (var (id, old) in _incoming.Where(i => i.Value.VmId == p.Spec.Id && i.Value.Source.Path.Address.Equals(source)).ToArray())
        {
            _log.Info("incoming migration {0} of {1} is superseded by migration {2} from the same source {3}; discarding its copy",
                id, p.Spec.Id, p.MigrationId, source);
            old.Actor.Tell(new AbortIncoming(id, $"superseded by migration {p.MigrationId} of the same guest from the same source"));
            _incoming.Remove(id);
            _inDoubt.Remove(id);
        }
    }
}
