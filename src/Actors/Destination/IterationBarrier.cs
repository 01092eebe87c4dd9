using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Actors.Destination;

/// <summary>
/// The per-iteration sync barrier of one incoming migration: a channel that read Sync(k) waits until every channel
/// has read it, so no page of iteration k can be written after a page of k+1. A reconnected channel starts after the
/// last Sync its old connection delivered, so it never repeats one; keying by channel (a repeat takes the old slot)
/// and passing a Sync of an iteration already released are guards that keep a duplicate from opening a barrier early.
/// Threading: owned by the IncomingMigration and called only on its thread. The release sources belong to the
/// channels' receive loops, which await them; completing them (TrySet*) is safe from this thread.
/// </summary>
internal sealed class IterationBarrier
{
    private readonly Guid _id;
    private readonly int _channels;
    private readonly IActorRef _source;
    private readonly Dictionary<uint, Dictionary<int, TaskCompletionSource>> _waiting = new();
    private uint _releasedThrough;

    /// <param name="channels">How many channels must reach a Sync before it is released.</param>
    /// <param name="source">The source coordinator, told IterationReceived when an iteration is released.</param>
    public IterationBarrier(Guid id, int channels, IActorRef source)
    {
        _id = id;
        _channels = channels;
        _source = source;
    }

    /// <summary>A channel reached Sync(s.Iteration): hold it, or release every channel of that iteration.</summary>
    public void OnSync(SyncReached s)
    {
        if (s.Iteration <= _releasedThrough)
        {
            s.Release.TrySetResult();
            return;
        }

        if (!_waiting.TryGetValue(s.Iteration, out var waiting))
        {
            waiting = new Dictionary<int, TaskCompletionSource>();
            _waiting[s.Iteration] = waiting;
        }

        waiting[s.Channel] = s.Release;
        if (waiting.Count == _channels)
        {
            _waiting.Remove(s.Iteration);
            _releasedThrough = s.Iteration;
            foreach (var t in waiting.Values)
            {
                t.TrySetResult();
            }

            // Every page sent before these Syncs is in guest RAM: the source may forget which channel carried it.
            _source.Tell(new IterationReceived(_id, s.Iteration));
        }
    }

    /// <summary>The migration ends: cancels every channel still waiting at a barrier.</summary>
    public void CancelAll()
    {
        foreach (var t in _waiting.Values.SelectMany(x => x.Values))
        {
            t.TrySetCanceled();
        }

        _waiting.Clear();
    }
}
