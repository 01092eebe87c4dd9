using Migration.Actors.Messages;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>Where a stored guest stands with respect to migration (what a new incarnation of the node must know).</summary>
public enum GuestHandoverState
{
    /// <summary>Owned here, no migration running.</summary>
    Owned,

    /// <summary>Owned here, an outgoing migration runs (the guest may be stopped for stop-copy).</summary>
    Migrating,

    /// <summary>
    /// Released to the destination (GuestHandedOver): the destination verified it and owns it now; this copy is kept
    /// paused only until the migration ends. Never run again here.
    /// </summary>
    Released,
}

/// <summary>One stored guest: the object itself and its handover state (plus the outgoing migration, if any).</summary>
public sealed record StoredGuest(GuestVm Guest, GuestHandoverState State, Guid? MigrationId, string? Destination);

/// <summary>
/// The guests a node runs, held outside its ActorSystem so that they outlive it: when the node is downed (removed from
/// the cluster) its ActorSystem terminates, and the next incarnation (<see cref="NodeHost"/>) adopts them
/// (<see cref="HypervisorNode"/> PreStart). The guest objects (RAM mappings, devices, workload thread) keep running
/// meanwhile; only the control plane restarts.
/// Ownership: the store owns every guest in it; whoever removes a guest owns it from then on (and disposes it).
/// <see cref="DisposeAll"/> runs when the node ends for good (operator shutdown). Thread-safe (one lock): written by the
/// current incarnation's HypervisorNode on its thread, read by the next one's PreStart after the old system terminated.
/// </summary>
public sealed class GuestStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, StoredGuest> _guests = new(StringComparer.Ordinal);

    // The reports of the node's last ended migrations, oldest first, so that `status ID` still answers after a rejoin
    // (the incarnation that ran the migration kept them in its actor, gone with its ActorSystem). Reports are immutable.
    private readonly LinkedList<(Guid Id, MigrationReport Report)> _reports = new();
    private const int MaxReports = 100;

    public int Count
    {
        get { lock (_gate) return _guests.Count; }
    }

    /// <summary>Keeps the report of an ended migration (replacing an earlier one of the same id); the oldest beyond 100 go.</summary>
    public void RememberReport(Guid migrationId, MigrationReport report)
    {
        lock (_gate)
        {
            for (var n = _reports.First; n is not null; n = n.Next)
            {
                if (n.Value.Id == migrationId)
                {
                    _reports.Remove(n);
                    break;
                }
            }

            _reports.AddLast((migrationId, report));
            while (_reports.Count > MaxReports)
            {
                _reports.RemoveFirst();
            }
        }
    }

    /// <summary>The kept reports, oldest first (a new incarnation's history of ended migrations).</summary>
    public IReadOnlyList<(Guid Id, MigrationReport Report)> Reports()
    {
        lock (_gate)
        {
            return _reports.ToArray();
        }
    }

    /// <summary>A guest now runs here (created, or arrived by migration).</summary>
    public void Add(GuestVm guest)
    {
        lock (_gate)
        {
            _guests[guest.Id] = new StoredGuest(guest, GuestHandoverState.Owned, null, null);
        }
    }

    public void MigrationStarted(string vmId, Guid migrationId, string destination) =>
        Update(vmId, g => g with { State = GuestHandoverState.Migrating, MigrationId = migrationId, Destination = destination });

    /// <summary>The outgoing migration ended and the guest stays here.</summary>
    public void MigrationEnded(string vmId, Guid migrationId) =>
        Update(vmId, g => g.MigrationId == migrationId ? g with { State = GuestHandoverState.Owned, MigrationId = null, Destination = null } : g);

    /// <summary>The guest was released to the destination of <paramref name="migrationId"/> (GuestHandedOver).</summary>
    public void Released(string vmId, Guid migrationId) =>
        Update(vmId, g => g.MigrationId == migrationId ? g with { State = GuestHandoverState.Released } : g);

    /// <summary>Removes the guest; the caller owns it from now on. False if it was not stored.</summary>
    public bool Remove(string vmId, out GuestVm? guest)
    {
        lock (_gate)
        {
            guest = _guests.Remove(vmId, out var g) ? g.Guest : null;
            return guest is not null;
        }
    }

    /// <summary>Removes exactly this guest object (not a later guest of the same id); the caller owns it from now on.</summary>
    public void Remove(GuestVm guest)
    {
        lock (_gate)
        {
            if (_guests.TryGetValue(guest.Id, out var g) && ReferenceEquals(g.Guest, guest))
            {
                _guests.Remove(guest.Id);
            }
        }
    }

    /// <summary>A snapshot of every stored guest (for a new incarnation to adopt).</summary>
    public IReadOnlyList<StoredGuest> Snapshot()
    {
        lock (_gate)
        {
            return _guests.Values.ToArray();
        }
    }

    /// <summary>The node ends for good: every guest stops and frees its memory.</summary>
    public void DisposeAll()
    {
        StoredGuest[] all;
        lock (_gate)
        {
            all = _guests.Values.ToArray();
            _guests.Clear();
        }

        foreach (var g in all)
        {
            g.Guest.Dispose();
        }
    }

    private void Update(string vmId, Func<StoredGuest, StoredGuest> change)
    {
        lock (_gate)
        {
            if (_guests.TryGetValue(vmId, out var g))
            {
                _guests[vmId] = change(g);
            }
        }
    }
}
