using Akka.Actor;

namespace Migration.Host.Bench;

/// <summary>
/// Fails a bench step at once when the bench's source node goes away under it. A node downed during a run (by the
/// split-brain resolver, after its heartbeats came late) or shut down terminates its ActorSystem and starts a new
/// incarnation; the asks made to the old one are never answered, and the bench used to wait out their timeout (300 s
/// for a CreateGuest) before saying anything.
/// </summary>
internal static class SourceNodeGuard
{
    /// <summary>The result of <paramref name="work"/>, or an InvalidOperationException as soon as <paramref name="source"/> terminates first.</summary>
    public static async Task<T> UnlessTerminated<T>(ActorSystem source, Task<T> work, string step)
    {
        var first = await Task.WhenAny(work, source.WhenTerminated).ConfigureAwait(false);
        if (first != work)
        {
            throw new InvalidOperationException(
                $"{step}: the source node's ActorSystem terminated meanwhile (downed by the split-brain resolver or shut down; " +
                "the log above says which), so the run is void");
        }

        return await work.ConfigureAwait(false);
    }
}
