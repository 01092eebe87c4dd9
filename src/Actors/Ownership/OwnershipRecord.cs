using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;

namespace Migration.Actors.Ownership;

/// <summary>
/// The cluster's majority-confirmed record of which node may run each guest: an Akka.DistributedData LWWDictionary
/// (guest id -> <see cref="GuestEpoch"/>) replicated on the hypervisor nodes (distributed-data role), whose clock is the
/// epoch, so a merge keeps the higher epoch. Read with ReadMajority and written with WriteMajority by
/// <see cref="OwnershipClaim"/>: a node resumes a guest only after its write of a newer epoch naming itself was
/// confirmed by a majority (docs/architecture.md, "Ownership rules"). A creation records epoch 1 the same way.
/// Stateless apart from the key: safe to use from any actor (messages go to the node's Replicator).
/// </summary>
public static class OwnershipRecord
{
    public static readonly LWWDictionaryKey<string, string> Key = new("guest-epochs");

    /// <summary>The entry of <paramref name="vmId"/> in a replicated map read from the Replicator (None if absent or malformed).</summary>
    public static GuestEpoch Of(LWWDictionary<string, string>? map, string vmId) =>
        map is not null && map.TryGetValue(vmId, out var text) && GuestEpoch.TryParse(text, out var e, out _) ? e : GuestEpoch.None;

    /// <summary>An Update that sets <paramref name="vmId"/> to <paramref name="next"/> if the entry is still <paramref name="expected"/>
    /// on the replica that applies it (else the modify throws and the Replicator answers ModifyFailure).</summary>
    public static Update SetIf(UniqueAddress writer, string vmId, GuestEpoch expected, GuestEpoch next, IWriteConsistency consistency, object? context) =>
        Dsl.Update(Key, LWWDictionary<string, string>.Empty, consistency, context, map =>
        {
            var current = Of(map, vmId);
            if (current != expected && current != next)
            {
                throw new InvalidOperationException($"guest {vmId}: ownership record is {current}, expected {expected}");
            }

            return map.SetItem(writer, vmId, next.Format(), (_, _) => next.Epoch);
        });
}
