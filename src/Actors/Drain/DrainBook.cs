namespace Migration.Actors.Drain;

/// <summary>
/// A migration the book decided to start: guest <paramref name="VmId"/> of drain <paramref name="DrainId"/> to
/// <paramref name="Target"/>, under the id <paramref name="MigrationId"/> the book chose (recorded in the attempt before
/// the StartMigration is sent, so a coordinator that takes over can ask for the same migration again).
/// </summary>
public sealed record DrainStart(Guid DrainId, string Source, string VmId, string Target, Guid MigrationId);

/// <summary>
/// The drains of the cluster and their guests, and the decisions: which guest starts next, where, and what a failure
/// means (one retry on another node, then failed). Enforces both limits: at most a drain's MaxParallel guests in
/// flight per drain (a drain has one source node), and at most the cluster-wide limit over all drains.
/// Pure and single-threaded: owned by the DrainCoordinator and touched only on its thread.
/// </summary>
public sealed class DrainBook
{
    /// <summary>A failed migration is retried once on another node: two attempts in all.</summary>
    public const int MaxAttempts = 2;

    private readonly List<DrainStatus> _drains = [];

    public IReadOnlyList<DrainStatus> Drains => _drains;

    /// <summary>Guests in flight (starting or migrating) over every drain: what the cluster-wide limit counts.</summary>
    public int InFlight => _drains.Sum(d => d.Guests.Count(g => g.InFlight));

    /// <summary>The running drain of <paramref name="node"/>, if any.</summary>
    public DrainStatus? Active(string node) => _drains.FirstOrDefault(d => d.Node == node && d.IsRunning);

    public DrainStatus? Get(Guid drainId) => _drains.FirstOrDefault(d => d.DrainId == drainId);

    /// <summary>Adds (or replaces, by id) a drain; keeps the 20 newest ended drains.</summary>
    public void Put(DrainStatus drain)
    {
        var i = _drains.FindIndex(d => d.DrainId == drain.DrainId);
        if (i >= 0)
        {
            _drains[i] = drain;
        }
        else
        {
            _drains.Add(drain);
        }

        var ended = _drains.Where(d => !d.IsRunning).ToList();
        foreach (var old in ended.Take(Math.Max(0, ended.Count - 20)))
        {
            _drains.Remove(old);
        }
    }

    /// <summary>True when a running drain has a pending guest and room under both limits.</summary>
    public bool WantsToStart(int clusterLimit) =>
        InFlight < clusterLimit && _drains.Any(d => d.IsRunning && d.Guests.Any(g => g.State == DrainGuest.Pending) &&
                                                     d.Guests.Count(g => g.InFlight) < d.MaxParallel);

    /// <summary>
    /// Chooses the guests to start now, given the nodes' capacities, and marks them starting (with a new attempt).
    /// A guest that fits nowhere even with nothing reserved fails with the reason; one that waits only for guests
    /// in flight stays pending.
    /// </summary>
    public IReadOnlyList<DrainStart> Plan(IReadOnlyList<NodeCapacity> nodes, int clusterLimit, DateTime now)
    {
        var starts = new List<DrainStart>();
        var reserved = Reserved(nodes);
        var budget = clusterLimit - InFlight;
        for (var di = 0; di < _drains.Count && budget > 0; di++)
        {
            var drain = _drains[di];
            if (!drain.IsRunning)
            {
                continue;
            }

            var slots = drain.MaxParallel - drain.Guests.Count(g => g.InFlight);
            var guests = drain.Guests.ToArray();
            foreach (var (g, gi) in guests.Select((g, gi) => (g, gi))
                         .Where(x => x.g.State == DrainGuest.Pending)
                         .OrderByDescending(x => x.g.RamBytes).ThenBy(x => x.g.VmId, StringComparer.Ordinal).ToArray())
            {
                if (slots <= 0 || budget <= 0)
                {
                    break;
                }

                var excluded = g.Attempts.Select(a => a.Target).ToHashSet(StringComparer.Ordinal);
                var target = DrainPlacement.Choose(g.RamBytes, drain.Node, nodes, drain.Targets, excluded, reserved, out var reason);
                if (target is null)
                {
                    if (DrainPlacement.Choose(g.RamBytes, drain.Node, nodes, drain.Targets, excluded, new Dictionary<string, long>(), out _) is null)
                    {
                        guests[gi] = g with { State = DrainGuest.Failed, Error = Join(g.Error, reason) };
                    }

                    continue;
                }

                reserved[target] = reserved.GetValueOrDefault(target) + g.RamBytes;
                var migrationId = Guid.NewGuid();
                guests[gi] = g with
                {
                    State = DrainGuest.Starting,
                    Target = target,
                    MigrationId = migrationId,
                    Percent = 0,
                    Attempts = [.. g.Attempts, new DrainAttempt(target, migrationId, now, null, null)],
                };
                starts.Add(new DrainStart(drain.DrainId, drain.Node, g.VmId, target, migrationId));
                slots--;
                budget--;
            }

            _drains[di] = drain with { Guests = guests };
        }

        return starts;
    }

    /// <summary>
    /// The starts a coordinator that took over must ask for again: guests recorded as starting under an id (the
    /// predecessor may or may not have sent the StartMigration; asking again with the same id is idempotent).
    /// </summary>
    public IReadOnlyList<DrainStart> Unanswered() =>
        _drains.Where(d => d.IsRunning)
            .SelectMany(d => d.Guests.Where(g => g.State == DrainGuest.Starting && g.MigrationId is not null)
                .Select(g => new DrainStart(d.DrainId, d.Node, g.VmId, g.Target!, g.MigrationId!.Value)))
            .ToArray();

    /// <summary>True while <paramref name="start"/> is still what its guest waits for (not ended, cancelled or replanned since).</summary>
    public bool StillStarting(DrainStart start) =>
        Get(start.DrainId)?.Guests.FirstOrDefault(g => g.VmId == start.VmId) is { State: DrainGuest.Starting } g && g.MigrationId == start.MigrationId;

    /// <summary>The source accepted the migration (MigrationStarted).</summary>
    public void Started(Guid drainId, string vmId, Guid migrationId) =>
        Update(drainId, vmId, g => g.State != DrainGuest.Starting ? g : g with
        {
            State = DrainGuest.Migrating,
            MigrationId = migrationId,
            Attempts = [.. g.Attempts.Take(g.Attempts.Count - 1), g.Attempts[^1] with { MigrationId = migrationId }],
        });

    /// <summary>Latest progress of a drained migration (never backwards).</summary>
    public void Progress(Guid migrationId, double percent)
    {
        if (Find(migrationId) is { } hit)
        {
            Update(hit.DrainId, hit.VmId, g => g with { Percent = Math.Max(g.Percent, percent) });
        }
    }

    /// <summary>The drain and guest of a migration in flight, by its id.</summary>
    public (Guid DrainId, string VmId)? Find(Guid migrationId)
    {
        foreach (var d in _drains)
        {
            if (d.Guests.FirstOrDefault(g => g.InFlight && g.MigrationId == migrationId) is { } g)
            {
                return (d.DrainId, g.VmId);
            }
        }

        return null;
    }

    /// <summary>
    /// An attempt ended: done, or failed with <paramref name="error"/> (also when the source refused to start it).
    /// A first failure puts the guest back to pending (the placement then avoids that target); a second one fails it.
    /// Ignored unless the guest is in flight (a duplicate MigrationFinished, a late reply).
    /// </summary>
    public void Ended(Guid drainId, string vmId, bool completed, string? error, DateTime now) =>
        Update(drainId, vmId, g =>
        {
            if (!g.InFlight)
            {
                return g;
            }

            var outcome = completed ? "completed" : "failed: " + error;
            var attempts = g.Attempts.Take(g.Attempts.Count - 1).Append(g.Attempts[^1] with { EndedUtc = now, Outcome = outcome }).ToArray();
            if (completed)
            {
                return g with { State = DrainGuest.Done, Percent = 100, Attempts = attempts };
            }

            var message = $"attempt {attempts.Length} to {g.Target} failed: {error}";
            return attempts.Length < MaxAttempts
                ? g with { State = DrainGuest.Pending, Error = message, MigrationId = null, Percent = 0, Attempts = attempts }
                : g with { State = DrainGuest.Failed, Error = Join(g.Error, message), Attempts = attempts };
        });

    /// <summary>Pending guests of <paramref name="node"/>'s running drain stay where they are (uncordon); returns how many.</summary>
    public int CancelPending(string node)
    {
        if (Active(node) is not { } drain)
        {
            return 0;
        }

        var n = drain.Guests.Count(g => g.State == DrainGuest.Pending);
        Put(drain with { Guests = drain.Guests.Select(g => g.State == DrainGuest.Pending ? g with { State = DrainGuest.Cancelled, Error = "uncordoned before it started" } : g).ToArray() });
        return n;
    }

    /// <summary>Every in-flight guest of <paramref name="node"/>'s running drain fails (the node left the cluster).</summary>
    public void SourceGone(string node, DateTime now)
    {
        if (Active(node) is not { } drain)
        {
            return;
        }

        Put(drain with
        {
            Guests = drain.Guests.Select(g => g.Ended ? g : g with { State = DrainGuest.Failed, Error = Join(g.Error, $"source node {node} left the cluster") }).ToArray(),
        });
    }

    /// <summary>
    /// The drain's guests have all ended; <paramref name="stillOnNode"/> is what the node runs now. Guests not seen
    /// before (they arrived during the drain) become pending and the drain goes on (true); otherwise it ends, done when
    /// every guest moved, else failed.
    /// </summary>
    public bool Close(Guid drainId, IReadOnlyList<(string VmId, long RamBytes)> stillOnNode, DateTime now)
    {
        if (Get(drainId) is not { IsRunning: true } drain || drain.Guests.Any(g => !g.Ended))
        {
            return false;
        }

        var known = drain.Guests.Select(g => g.VmId).ToHashSet(StringComparer.Ordinal);
        var arrived = stillOnNode.Where(x => !known.Contains(x.VmId)).ToArray();
        if (arrived.Length > 0)
        {
            Put(drain with { Guests = [.. drain.Guests, .. arrived.Select(a => NewGuest(a.VmId, a.RamBytes))] });
            return true;
        }

        var state = drain.Guests.All(g => g.State == DrainGuest.Done) ? DrainStatus.Done : DrainStatus.Failed;
        Put(drain with { State = state, EndedUtc = now });
        return false;
    }

    public static DrainGuest NewGuest(string vmId, long ramBytes) => new(vmId, ramBytes, DrainGuest.Pending, null, null, 0, null, []);

    /// <summary>
    /// Per node, the RAM of guests in flight towards it that it does not count yet (its Incoming list does not name
    /// the migration: not prepared yet, or not even started).
    /// </summary>
    private Dictionary<string, long> Reserved(IReadOnlyList<NodeCapacity> nodes)
    {
        var counted = nodes.SelectMany(n => n.Incoming).ToHashSet();
        var reserved = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var g in _drains.SelectMany(d => d.Guests).Where(g => g.InFlight && g.Target is not null))
        {
            if (g.MigrationId is not { } id || !counted.Contains(id))
            {
                reserved[g.Target!] = reserved.GetValueOrDefault(g.Target!) + g.RamBytes;
            }
        }

        return reserved;
    }

    private void Update(Guid drainId, string vmId, Func<DrainGuest, DrainGuest> change)
    {
        if (Get(drainId) is { } drain)
        {
            Put(drain with { Guests = drain.Guests.Select(g => g.VmId == vmId ? change(g) : g).ToArray() });
        }
    }

    private static string Join(string? earlier, string now) => string.IsNullOrEmpty(earlier) ? now : earlier + "; " + now;
}
