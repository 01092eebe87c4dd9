namespace Migration.Actors.Drain;

/// <summary>
/// Where a drained guest goes: the allowed node with the most free guest memory that can hold it. Pure; used by
/// <see cref="DrainBook"/> on the drain coordinator's thread.
/// </summary>
public static class DrainPlacement
{
    /// <summary>
    /// Chooses the node for a guest of <paramref name="ramBytes"/> leaving <paramref name="source"/>: not the source, not
    /// cordoned, in <paramref name="allowed"/> (all nodes when empty), not in <paramref name="excluded"/> (where it failed
    /// before); free memory = capacity - used - <paramref name="reserved"/> (guests on their way there that the node
    /// does not count yet). Ties go to the lower address, so a placement is repeatable. Null, with the reason, when none
    /// fits.
    /// </summary>
    public static string? Choose(
        long ramBytes,
        string source,
        IReadOnlyList<NodeCapacity> nodes,
        IReadOnlyCollection<string> allowed,
        IReadOnlyCollection<string> excluded,
        IReadOnlyDictionary<string, long> reserved,
        out string reason)
    {
        string? best = null;
        var bestFree = long.MinValue;
        var seen = new List<string>();
        foreach (var n in nodes)
        {
            if (n.Node == source || n.Cordoned || (allowed.Count > 0 && !allowed.Contains(n.Node)) || excluded.Contains(n.Node))
            {
                continue;
            }

            var free = n.CapacityBytes - n.UsedBytes - reserved.GetValueOrDefault(n.Node);
            seen.Add($"{n.Node} {Settings.ByteSize.Format(Math.Max(0, free))} free");
            if (free >= ramBytes && (free > bestFree || (free == bestFree && string.CompareOrdinal(n.Node, best) < 0)))
            {
                best = n.Node;
                bestFree = free;
            }
        }

        reason = best is not null ? "" :
            seen.Count == 0 ? "no node to move it to (every other node is cordoned, excluded by --to, or was tried already)" :
            $"no node has {Settings.ByteSize.Format(ramBytes)} free ({string.Join(", ", seen)})";
        return best;
    }
}
