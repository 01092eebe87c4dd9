using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>One incoming migration this node receives: its guest's id, its actor, the RAM it reserves, the source's node actor.</summary>
internal sealed record IncomingEntry(string VmId, IActorRef Actor, long RamBytes, IActorRef Source);

/// <summary>A PrepareIncoming that waits until the copies it supersedes are gone, with whom to answer.</summary>
internal sealed record DeferredPrepare(PrepareIncoming Prepare, IActorRef Sender);

/// <summary>
/// The incoming migrations of a node, from PrepareIncoming until the guest runs here (IncomingGuestRunning) or is
/// discarded, and which of them wait for a commit that is in doubt (listed by `vm list` meanwhile). A guest enters the
/// node's <see cref="GuestRegistry"/> only when it runs here. A copy superseded by a newer prepare of the same guest
/// from the same source is "discarding" until its actor terminated: its RAM still counts against the node's
/// capacity meanwhile (an allocation in flight cannot be cancelled, <see cref="DeferBehindSuperseded"/>), and the newer
/// prepare waits for it. Owned by the <see cref="HypervisorNode"/> and called on its thread only (no locks).
/// </summary>
internal sealed class IncomingMigrations
{
    private readonly Dictionary<Guid, IncomingEntry> _incoming = new();
    private readonly Dictionary<Guid, IncomingEntry> _discarding = new();
    private readonly Dictionary<Guid, GuestInfo> _inDoubt = new();
    private readonly List<DeferredPrepare> _deferred = new(); // at most one per guest and source (a newer one replaces it)

    /// <summary>Incoming migrations that are not being discarded.</summary>
    public int Count => _incoming.Count;

    /// <summary>The ids of the incoming migrations not being discarded, as of now.</summary>
    public Guid[] Ids() => _incoming.Keys.ToArray();

    /// <summary>True if the id is an incoming migration here: received, being discarded, or deferred.</summary>
    public bool Contains(Guid migrationId) =>
        _incoming.ContainsKey(migrationId) || _discarding.ContainsKey(migrationId) || _deferred.Any(d => d.Prepare.MigrationId == migrationId);

    /// <summary>A received incoming migration (not one being discarded).</summary>
    public bool TryGet(Guid migrationId, [MaybeNullWhen(false)] out IncomingEntry entry) => _incoming.TryGetValue(migrationId, out entry);

    /// <summary>
    /// True if an incoming migration brings guest <paramref name="vmId"/>, one being discarded included (if its ownership
    /// claim had started, it may yet run here).
    /// </summary>
    public bool Receives(string vmId) => _incoming.Values.Any(v => v.VmId == vmId) || _discarding.Values.Any(v => v.VmId == vmId);

    /// <summary>Guest RAM reserved by the incoming migrations, those being discarded included (their memory is not back yet).</summary>
    public long RamBytes() => _incoming.Values.Sum(i => i.RamBytes) + _discarding.Values.Sum(i => i.RamBytes);

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

    /// <summary>
    /// The incoming migration ended: its guest runs here (<paramref name="guestRunsHere"/>: its RAM now counts as the
    /// guest's), or it was discarded, or its actor stopped. A copy being discarded that reports "discarded" still counts
    /// until its actor terminated (<see cref="ForgetDiscardedBy"/>): it frees the guest's RAM when it stops, after
    /// the report. Prepares it held back are released by <see cref="TakeReleased"/>.
    /// </summary>
    public void End(Guid migrationId, bool guestRunsHere = false)
    {
        _incoming.Remove(migrationId);
        _inDoubt.Remove(migrationId);
        if (guestRunsHere)
        {
            _discarding.Remove(migrationId);
        }
    }

    /// <summary>
    /// Takes back the prepare <paramref name="migrationId"/> waiting behind a superseded copy (its source aborted it,
    /// or gave up waiting); false if none waits. Its sender is not answered: the abort ends it.
    /// </summary>
    public bool CancelDeferred(Guid migrationId) => _deferred.RemoveAll(d => d.Prepare.MigrationId == migrationId) > 0;

    /// <summary>The source of the prepare <paramref name="migrationId"/> waiting behind a superseded copy, if one waits.</summary>
    public IActorRef? DeferredSource(Guid migrationId) => _deferred.FirstOrDefault(d => d.Prepare.MigrationId == migrationId)?.Prepare.Source;

    /// <summary>The received incoming migrations run by <paramref name="actor"/> (a watched child that terminated).</summary>
    public KeyValuePair<Guid, IncomingEntry>[] RunBy(IActorRef actor) => _incoming.Where(i => i.Value.Actor.Equals(actor)).ToArray();

    /// <summary>
    /// Forgets the copies being discarded by <paramref name="actor"/>, which terminated (its guest's memory is back;
    /// nobody waits for its result); returns their ids.
    /// </summary>
    public Guid[] ForgetDiscardedBy(IActorRef actor)
    {
        var ids = _discarding.Where(d => d.Value.Actor.Equals(actor)).Select(d => d.Key).ToArray();
        foreach (var id in ids)
        {
            _discarding.Remove(id);
        }

        return ids;
    }

    /// <summary>
    /// A source node runs at most one migration per guest, and starts a new one only after the previous one ended. So a
    /// valid PrepareIncoming <paramref name="p"/> for guest G from source node S proves that every incoming migration of
    /// G from S still held here is obsolete: its AbortIncoming may still be on the way (a cancel reports on the source
    /// at once). Such a copy is aborted now and no longer blocks the new migration's id check, but its RAM counts until
    /// its actor reports its end: a guest still being allocated gives its memory back only when the allocation
    /// finishes, and a copy whose ownership claim had started ignores the abort, and may yet run here. So while any such
    /// copy is discarding, <paramref name="p"/> waits (true; the node handles it again once <see cref="TakeReleased"/>
    /// gives it back, and then finds the guest's memory free, or the guest running here). A prepare of G from S that was
    /// already waiting is superseded by <paramref name="p"/> and refused. Copies of G from another node are left alone:
    /// only G's owner may start it, and that case is refused as "already exists".
    /// </summary>
    public bool DeferBehindSuperseded(PrepareIncoming p, IActorRef sender, ILoggingAdapter log)
    {
        var source = p.Source.Path.Address;
        foreach (var (id, old) in _incoming.Where(i => Supersedes(p, i.Value.VmId, i.Value.Source)).ToArray())
        {
            log.Info("incoming migration {0} of {1} is superseded by migration {2} from the same source {3}; discarding its copy",
                id, p.Spec.Id, p.MigrationId, source);
            old.Actor.Tell(new AbortIncoming(id, $"superseded by migration {p.MigrationId} of the same guest from the same source"));
            _incoming.Remove(id);
            _inDoubt.Remove(id);
            _discarding[id] = old;
        }

        if (!_discarding.Values.Any(d => Supersedes(p, d.VmId, d.Source)))
        {
            return false;
        }

        foreach (var older in _deferred.Where(d => Supersedes(p, d.Prepare.Spec.Id, d.Prepare.Source)).ToArray())
        {
            _deferred.Remove(older);
            older.Sender.Tell(new PrepareRefused(older.Prepare.MigrationId,
                $"superseded by migration {p.MigrationId} of the same guest {p.Spec.Id} from the same source before it was prepared"));
        }

        log.Info("incoming migration {0} of {1} waits until the copy it supersedes is discarded", p.MigrationId, p.Spec.Id);
        _deferred.Add(new DeferredPrepare(p, sender));
        return true;
    }

    /// <summary>The deferred prepares that no discarding copy holds back any more, taken out: the node handles them again, in order.</summary>
    public DeferredPrepare[] TakeReleased()
    {
        var released = _deferred.Where(d => !_discarding.Values.Any(c => Supersedes(d.Prepare, c.VmId, c.Source))).ToArray();
        foreach (var d in released)
        {
            _deferred.Remove(d);
        }

        return released;
    }

    private static bool Supersedes(PrepareIncoming p, string vmId, IActorRef source) =>
        vmId == p.Spec.Id && source.Path.Address.Equals(p.Source.Path.Address);
}
