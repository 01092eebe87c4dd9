using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>
/// The source node's record of what became of each outgoing migration's guest, to answer QueryHandover from a
/// destination that verified the guest but never received CommitMigration. A migration is InProgress from its start,
/// HandedOver once its coordinator released the guest (GuestHandedOver), and when it ends either HandedOver (it had
/// released the guest) or KeptBySource. HandedOver is final except for TakenBack, which a majority-confirmed take-back of the guest makes.
/// Outcomes of ended migrations are kept for the last <c>capacity</c> ended migrations (a few dozen bytes each), far
/// longer than a destination keeps asking; the reports shown to operators are pruned separately.
/// Not thread-safe: owned by the HypervisorNode and used on its thread only.
/// </summary>
public sealed class HandoverLedger(int capacity = 10_000)
{
    private readonly Dictionary<Guid, HandoverDecision> _outcomes = new();
    private readonly Queue<Guid> _ended = new(); // ended migrations, oldest first, for pruning
    private readonly HashSet<Guid> _endedSet = new();

    /// <summary>The coordinator of <paramref name="migrationId"/> was created; it owns the guest.</summary>
    public void Started(Guid migrationId) => _outcomes.TryAdd(migrationId, HandoverDecision.InProgress);

    /// <summary>The coordinator released the guest to the destination (before it sends CommitMigration).</summary>
    public void HandedOver(Guid migrationId) => _outcomes[migrationId] = HandoverDecision.HandedOver;

    /// <summary>The migration ended; <paramref name="handedOver"/> says whether the guest had been released.</summary>
    public void Ended(Guid migrationId, bool handedOver)
    {
        _outcomes.TryGetValue(migrationId, out var current);
        _outcomes[migrationId] = handedOver || current == HandoverDecision.HandedOver ? HandoverDecision.HandedOver : HandoverDecision.KeptBySource;
        if (_endedSet.Add(migrationId))
        {
            _ended.Enqueue(migrationId);
        }

        while (_ended.Count > capacity)
        {
            var old = _ended.Dequeue();
            _endedSet.Remove(old);
            _outcomes.Remove(old);
        }
    }

    /// <summary>The coordinator had released the guest but took it back through the majority ownership record
    /// (the destination was gone before it confirmed the resume): the source runs it again. The one move out of HandedOver,
    /// made only after a majority confirmed the source's newer epoch, which refuses any later claim of the destination.</summary>
    public void TakenBack(Guid migrationId) => _outcomes[migrationId] = HandoverDecision.KeptBySource;

    /// <summary>The answer to QueryHandover(<paramref name="migrationId"/>).</summary>
    public HandoverDecision Decide(Guid migrationId) =>
        _outcomes.TryGetValue(migrationId, out var d) ? d : HandoverDecision.Unknown;
}
