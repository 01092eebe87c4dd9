using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>A guest in the registry: the guest, its `vm list` state, and the outgoing migration that holds it, if any.</summary>
internal sealed class GuestEntry(GuestVm guest)
{
    public GuestVm Guest { get; } = guest;
    public string State { get; set; } = "running";

    /// <summary>The outgoing migration that holds the guest; Guid.Empty for an unconfirmed guest that no migration holds.</summary>
    public Guid? MigrationId { get; set; }
}

/// <summary>
/// The guests a node holds and the memory they take: the guests it owns (running, migrating, or unconfirmed while the
/// ownership record decides, <see cref="GuestReclaim"/>), and the stopped copies of guests it handed over whose
/// migration has not ended yet (freed at MigrationEnded, or kept in custody, <see cref="CustodyKeeper"/>). Incoming
/// guests are in <see cref="IncomingMigrations"/> until they run here; they count against the memory capacity too.
/// Owned by the <see cref="HypervisorNode"/> and called on its thread only (no locks). The guest objects themselves are
/// owned by the node's <see cref="GuestStore"/>.
/// </summary>
internal sealed class GuestRegistry(string nodeName, MigrationSettings defaults, ActorSystem system, IncomingMigrations incoming)
{
    private readonly Dictionary<string, GuestEntry> _guests = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, GuestVm> _handedOver = new();
    private readonly Dictionary<string, long> _building = new(StringComparer.Ordinal); // vm id -> RAM bytes

    public int Count => _guests.Count;

    public bool TryGet(string vmId, [MaybeNullWhen(false)] out GuestEntry entry) => _guests.TryGetValue(vmId, out entry);

    /// <summary>True if guest <paramref name="vmId"/> is here, being created here, or on its way here.</summary>
    public bool IsTaken(string vmId) => _guests.ContainsKey(vmId) || _building.ContainsKey(vmId) || incoming.Receives(vmId);

    /// <summary>
    /// A guest's RAM is being allocated and filled off the node's thread (CreateGuest): its id is taken and its RAM
    /// counts against the capacity until <see cref="EndBuilding"/>.
    /// </summary>
    public void BeginBuilding(GuestSpec spec) => _building[spec.Id] = spec.RamBytes;

    public void EndBuilding(string vmId) => _building.Remove(vmId);

    /// <summary>The guest runs here (created, arrived, taken back or reclaimed): a new entry, state running.</summary>
    public void Run(GuestVm guest) => _guests[guest.Id] = new GuestEntry(guest) { State = "running" };

    /// <summary>
    /// The paused <paramref name="guest"/> is held as unconfirmed: listed, counted against memory, not migratable; the
    /// entry carries a migration id (Guid.Empty if none) so that no digest request resumes it.
    /// </summary>
    public void HoldUnconfirmed(GuestVm guest, Guid? migrationId) =>
        _guests[guest.Id] = new GuestEntry(guest) { State = HypervisorNode.UnconfirmedState, MigrationId = migrationId ?? Guid.Empty };

    public bool Remove(string vmId, [MaybeNullWhen(false)] out GuestEntry entry) => _guests.Remove(vmId, out entry);

    public void Remove(string vmId) => _guests.Remove(vmId);

    /// <summary>The destination verified the guest of <paramref name="migrationId"/>: its stopped copy stays here until the migration ends.</summary>
    public void KeepHandedOver(Guid migrationId, GuestVm guest) => _handedOver[migrationId] = guest;

    public bool IsHandedOver(Guid migrationId) => _handedOver.ContainsKey(migrationId);

    /// <summary>Takes the handed-over copy of <paramref name="migrationId"/> out of the registry (the caller owns it); false if none.</summary>
    public bool TakeHandedOver(Guid migrationId, [MaybeNullWhen(false)] out GuestVm guest) => _handedOver.Remove(migrationId, out guest);

    /// <summary>The migration whose handed-over copy of <paramref name="vmId"/> is still held here, if any.</summary>
    public Guid? HandedOverMigrationOf(string vmId) =>
        _handedOver.FirstOrDefault(h => h.Value.Id == vmId) is { Value: not null } held ? held.Key : null;

    /// <summary>The guests for the guest list: those in the registry, then incoming guests whose commit is in doubt.</summary>
    public GuestInfo[] List() => _guests.Values.Select(Info).Concat(incoming.InDoubt).ToArray();

    /// <summary>Guest memory this node may hold: node-memory-capacity, or the machine's memory when 0.</summary>
    public long MemoryCapacity => defaults.NodeMemoryCapacity > 0 ? defaults.NodeMemoryCapacity : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Guest RAM this node holds: its guests, guests being created, incoming guests, and stopped copies handed over but not yet freed (custody).</summary>
    public long MemoryUsed() => _guests.Values.Sum(g => g.Guest.Spec.RamBytes) + incoming.RamBytes() + _handedOver.Values.Sum(g => g.Spec.RamBytes) +
                                _building.Values.Sum();

    /// <summary>True (with the reason) if <paramref name="ramBytes"/> more guest RAM would exceed the node's capacity.</summary>
    public bool LacksMemory(long ramBytes, out string reason)
    {
        var capacity = MemoryCapacity;
        var used = MemoryUsed();
        if (used + ramBytes <= capacity)
        {
            NodeMemoryPool.Get(system).Pool.Trim(capacity - used - ramBytes); // guests + pool within capacity
            reason = "";
            return false;
        }

        reason = $"destination {nodeName} lacks memory: {ByteSize.Format(ramBytes)} of guest RAM requested, " +
                 $"{ByteSize.Format(Math.Max(0, capacity - used))} free of {ByteSize.Format(capacity)}";
        return true;
    }

    // Guid.Empty marks an unconfirmed guest that no migration holds (GuestReclaim): no migration to show.
    private GuestInfo Info(GuestEntry e) => new(e.Guest.Id, nodeName, e.State, e.Guest.Spec.RamBytes, e.Guest.Devices.Count,
        e.MigrationId is { } m && m != Guid.Empty ? m.ToString() : null,
        e.Guest.Workload.ThrottlePercent);
}
