using Migration.Actors.Messages;

namespace Migration.Actors.Node;

/// <summary>
/// What the node knows of its outgoing migrations for status queries and the migration list: each migration's guest
/// and destination from its start, its latest progress while it runs, and its report once it ended (also kept in the
/// <see cref="GuestStore"/>, so that a later incarnation answers for it). Only the last 100 ended migrations are kept.
/// Owned by the <see cref="HypervisorNode"/> and called on its thread only (no locks).
/// </summary>
internal sealed class MigrationHistory(string nodeName, GuestStore store)
{
    private const int MaxEnded = 100;
    private readonly Dictionary<Guid, MigrationReport> _finished = new();
    private readonly Dictionary<Guid, MigrationProgress> _progress = new();
    private readonly Dictionary<Guid, (string VmId, string Destination)> _started = new();

    /// <summary>The previous incarnation's ended migrations (from the store): `status ID` and the migration list answer after a rejoin.</summary>
    public void LoadStoredReports()
    {
        foreach (var (id, report) in store.Reports())
        {
            _started[id] = (report.VmId, report.Destination);
            _finished[id] = report;
        }
    }

    public void Started(Guid migrationId, string vmId, string destination) => _started[migrationId] = (vmId, destination);

    public bool TryGetStarted(Guid migrationId, out (string VmId, string Destination) started) => _started.TryGetValue(migrationId, out started);

    public bool IsFinished(Guid migrationId) => _finished.ContainsKey(migrationId);

    public bool TryGetFinished(Guid migrationId, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out MigrationReport report) =>
        _finished.TryGetValue(migrationId, out report);

    public void Progress(MigrationProgress p) => _progress[p.MigrationId] = p;

    /// <summary>An outgoing migration ended: its report answers status queries here and, kept in the store, in a later incarnation.</summary>
    public void Finished(Guid migrationId, MigrationReport report)
    {
        _finished[migrationId] = report;
        store.RememberReport(migrationId, report);
        _progress.Remove(migrationId);
    }

    /// <summary>Keeps the reports of the last 100 ended migrations (status queries), not an ever-growing history.</summary>
    /// <param name="isRunning">True for a migration whose coordinator still runs (never pruned).</param>
    public void Prune(Func<Guid, bool> isRunning)
    {
        foreach (var old in _finished.Keys.Where(k => !isRunning(k)).Take(Math.Max(0, _finished.Count - MaxEnded)).ToArray())
        {
            _finished.Remove(old);
            _started.Remove(old);
        }
    }

    public MigrationList List() => new(_started.Select(kv =>
    {
        _finished.TryGetValue(kv.Key, out var report);
        _progress.TryGetValue(kv.Key, out var progress);
        return new MigrationInfo(kv.Key, kv.Value.VmId, nodeName, kv.Value.Destination,
            report?.Status ?? progress?.Phase ?? "setup", progress, report);
    }).ToArray());
}
