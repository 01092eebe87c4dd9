using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;

namespace Migration.Actors.Drain;

/// <summary>
/// The drains' records replicated in Akka.DistributedData (an LWWDictionary drain id -> <see cref="DrainStatus"/>), so a
/// drain coordinator that starts on another node (the singleton moved) carries on where the last one was. Written by
/// the coordinator after each change of state with WriteMajority (progress percentages ride along, not written on
/// their own); read once when a coordinator starts. Call from the coordinator's thread.
/// </summary>
public sealed class DrainStore
{
    public static readonly LWWDictionaryKey<string, DrainStatus> Key = new("drains");

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);
    private readonly IActorRef _replicator;
    private readonly UniqueAddress _self;
    private readonly Dictionary<Guid, DrainStatus> _saved = new();

    public DrainStore(ActorSystem system)
    {
        _replicator = DistributedData.Get(system).Replicator;
        _self = Akka.Cluster.Cluster.Get(system).SelfUniqueAddress;
    }

    /// <summary>
    /// Writes every drain whose record changed since the last call and forgets the ones the book dropped. The
    /// replicator answers <paramref name="replyTo"/> with UpdateSuccess or a failure carrying <paramref name="request"/>
    /// (for a caller that acts only once its record is on a majority). Returns false if nothing changed (no write, no answer).
    /// </summary>
    public bool SaveChanged(IReadOnlyList<DrainStatus> drains, IActorRef replyTo, object? request = null)
    {
        var changed = drains.Where(d => !_saved.TryGetValue(d.DrainId, out var s) || !ReferenceEquals(s, d)).ToArray();
        var dropped = _saved.Keys.Where(id => drains.All(d => d.DrainId != id)).ToArray();
        if (changed.Length == 0 && dropped.Length == 0)
        {
            return false;
        }

        foreach (var d in changed)
        {
            _saved[d.DrainId] = d;
        }

        foreach (var id in dropped)
        {
            _saved.Remove(id);
        }

        _replicator.Tell(Dsl.Update(Key, LWWDictionary<string, DrainStatus>.Empty, new WriteMajority(Timeout), request, map =>
        {
            foreach (var d in changed)
            {
                map = map.SetItem(_self, d.DrainId.ToString(), d);
            }

            foreach (var id in dropped)
            {
                map = map.Remove(_self, id.ToString());
            }

            return map;
        }), replyTo);
        return true;
    }

    /// <summary>The replicated drains: from a majority if it answers in time, else the local replica.</summary>
    public async Task<IReadOnlyList<DrainStatus>> LoadAsync()
    {
        foreach (IReadConsistency consistency in new IReadConsistency[] { new ReadMajority(Timeout), ReadLocal.Instance })
        {
            var reply = await _replicator.Ask<IGetResponse>(Dsl.Get(Key, consistency), Timeout + TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            switch (reply)
            {
                case GetSuccess g:
                    return g.Get(Key).Entries.Values.OrderBy(d => d.StartedUtc).ToArray();
                case NotFound:
                    return [];
            }
        }

        return [];
    }
}
