using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>One incoming migration this node receives: its guest's id, its actor, the RAM it reserves, the source's node actor.</summary>
internal sealed record IncomingEntry(string VmId, IActorRef Actor, long RamBytes, IActorRef Source);

/// <summary>
/// The incoming migrations of a node, from PrepareIncoming until the guest runs here (IncomingGuestRunning) or is
/// discarded, and which of them wait for a commit that is in doubt (listed by `vm list` meanwhile). A guest enters the
/// node's <see cref="GuestRegistry"/> only when it runs here. Owned by the <see cref="HypervisorNode"/> and called on its
/// thread only (no locks).
/// </summary>
internal sealed class IncomingMigrations
{
    private readonly Dictionary<Guid, IncomingEntry> _incoming = new();
    private readonly Dictionary<Guid, GuestInfo> _inDoubt = new();

    public int Count => _incoming.Count;

    /// <summary>The ids of the incoming migrations, as of now.</summary>
    public Guid[] Ids() => _incoming.Keys.ToArray();

    public bool Contains(Guid migrationId) => _incoming.ContainsKey(migrationId);

    public bool TryGet(Guid migrationId, [MaybeNullWhen(false)] out IncomingEntry entry) => _incoming.TryGetValue(migrationId, out entry);

    /// <summary>True if an incoming migration brings guest <paramref name="vmId"/>.</summary>
    public bool Receives(string vmId) => _incoming.Values.Any(v => v.VmId == vmId);

    /// <summary>Guest RAM reserved by the incoming migrations.</summary>
    public long RamBytes() => _incoming.Values.Sum(i => i.RamBytes);

    /// <summary>The incoming guests whose commit is in doubt (IncomingInDoubt), for the guest list.</summary>
    public IEnumerable<GuestInfo> InDoubt => _inDoubt.Values;

    public void Add(Guid migrationId, IncomingEntry entry) => _incoming[migrationId] = entry;

    /// <summary>The commit of a known incoming migration is in doubt: its guest is listed with <paramref name="info"/>.</summary>
    public void MarkInDoubt(Guid migrationId, GuestInfo info)
    {
        if (_incoming.ContainsKey(migrationId))
        {
            _inDoubt[migrationId] = info;
        }
    }

    /// <summary>The incoming migration ended (its guest runs here, or was discarded): forgotten.</summary>
    public void End(Guid migrationId)
    {
        _incoming.Remove(migrationId);
        _inDoubt.Remove(migrationId);
    }

    /// <summary>The incoming migrations run by <paramref name="actor"/> (a watched child that terminated).</summary>
    public KeyValuePair<Guid, IncomingEntry>[] RunBy(IActorRef actor) => _incoming.Where(i => i.Value.Actor.Equals(actor)).ToArray();

    /// <summary>
    /// A source node runs at most one migration per guest, and starts a new one only after the previous one ended. So a
    /// PrepareIncoming for guest G from source node S proves that every incoming migration of G from S still held here
    /// is obsolete: its AbortIncoming may still be on the way (a cancel reports on the source at once). Such a copy is
    /// discarded now (it frees its memory when its actor stops) and no longer blocks the new migration. Copies of G
    /// from another node are left alone: only G's owner may start it, and that case is refused as "already exists".
    /// </summary>
    public void DiscardSuperseded(PrepareIncoming p, ILoggingAdapter log)
    {
        var source = p.Source.Path.Address;
        foreach (var (id, old) in _incoming.Where(i => i.Value.VmId == p.Spec.Id && i.Value.Source.Path.Address.Equals(source)).ToArray())
        {
            log.Info("incoming migration {0} of {1} is superseded by migration {2} from the same source {3}; discarding its copy",
                id, p.Spec.Id, p.MigrationId, source);
            old.Actor.Tell(new AbortIncoming(id, $"superseded by migration {p.MigrationId} of the same guest from the same source"));
            End(id);
        }
    }
}
