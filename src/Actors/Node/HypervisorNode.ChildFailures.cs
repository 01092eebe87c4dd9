using Akka.Actor;
using Akka.Event;
using Migration.Actors.Destination;
using Migration.Actors.Messages;

namespace Migration.Actors.Node;

// What the node does when one of its migration actors dies of an internal error (a bug, or Kill) instead of ending
// normally: the guest must still run on exactly one node.
public sealed partial class HypervisorNode
{
    private readonly Dictionary<IActorRef, Exception> _childFailures = new();
    private readonly Dictionary<Guid, List<IActorRef>> _watchers = new();

    /// <summary>
    /// A migration actor that throws is stopped, not restarted: a restart would start the migration over with half its
    /// state (a paused guest, channels gone) and the same id. The node watches it and cleans up (<see cref="OnChildTerminated"/>).
    /// The channel listener is resumed: it owns the node's listening socket, and its registry stays valid.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new ChildFailureStrategy(this);

    private sealed class ChildFailureStrategy(HypervisorNode node) : OneForOneStrategy(_ => Directive.Stop)
    {
        /// <summary>Runs on the node's thread (supervision is a system message to the parent).</summary>
        protected override Directive Handle(IActorRef child, Exception exception)
        {
            if (child.Equals(node._listener))
            {
                return Directive.Resume;
            }

            node._childFailures[child] = exception;
            return Directive.Stop;
        }
    }

    /// <summary>Someone follows this outgoing migration (the starter, or a later SubscribeMigration): told if its coordinator dies.</summary>
    private void RememberWatcher(Guid migrationId, IActorRef? watcher)
    {
        if (watcher is null || watcher.IsNobody())
        {
            return;
        }

        if (!_watchers.TryGetValue(migrationId, out var list))
        {
            _watchers[migrationId] = list = [];
        }

        list.Add(watcher);
    }

    private void OnChildTerminated(Terminated t)
    {
        _childFailures.Remove(t.ActorRef, out var cause);
        var why = cause is null ? "it stopped unexpectedly" : $"internal error: {cause.GetType().Name}: {cause.Message}";
        foreach (var (id, coordinator) in _outgoing.Where(o => o.Value.Equals(t.ActorRef)).ToArray())
        {
            OnCoordinatorDied(id, why);
        }

        foreach (var (id, incoming) in _incoming.Where(i => i.Value.Actor.Equals(t.ActorRef)).ToArray())
        {
            _log.Error("incoming migration {0} of {1} ended without a result ({2}); its guest was discarded", id, incoming.VmId, why);
            _incoming.Remove(id);
            _inDoubt.Remove(id);
            _listener.Tell(new UnregisterIncoming(id));
            incoming.Source.Tell(new IncomingFailed(id, $"the destination's incoming migration ended without a result ({why}); it discarded the guest", null));
        }
    }

    /// <summary>
    /// The coordinator died before MigrationEnded. Before the handover the guest is still ours as far as this node knows,
    /// but a destination may have verified it and claimed a newer epoch meanwhile (its DestinationVerified reached the
    /// dead coordinator), so a stopped guest resumes only through the record (<see cref="BeginReclaim"/>: run if a majority
    /// confirms a new epoch naming this node, discard if the record names the destination, paused while undecided); the
    /// report and the destination's AbortIncoming follow that decision. A guest still running (precopy: never stopped)
    /// keeps running at once: no destination can have verified a guest that never stopped. After the handover the
    /// destination resolves the missing commit by asking this node (HandedOver), and this node keeps the stopped copy
    /// until <see cref="HandoverCustody"/> says the destination runs it or is gone without it (then it resumes here).
    /// </summary>
    private void OnCoordinatorDied(Guid id, string why)
    {
        var (vmId, destination) = _started.TryGetValue(id, out var s) ? s : ("?", "");
        var reason = $"migration {id} of {vmId}: the coordinator ended without a result ({why})";
        _outgoing.Remove(id);
        if (_handedOver.ContainsKey(id))
        {
            BeginCustody(id, vmId, destination, reason);
            return;
        }

        if (_guests.TryGetValue(vmId, out var stopped) && stopped.MigrationId == id && !stopped.Guest.Workload.IsRunning)
        {
            _log.Error("{0}; the stopped guest stays paused on {1} until the ownership record says who runs it", reason, _nodeName);
            BeginReclaim(stopped.Guest, id, destination, afterRestart: false, reason);
            return;
        }

        if (_guests.TryGetValue(vmId, out var entry) && entry.MigrationId == id)
        {
            entry.Guest.Workload.Resume();
            _store.MigrationEnded(vmId, id);
            entry.MigrationId = null;
            entry.State = "running";
        }

        Context.ActorSelection($"{destination.TrimEnd('/')}/user/node").Tell(new AbortIncoming(id, reason));
        _log.Error("{0}; the guest keeps running on {1}", reason, _nodeName);

        var report = new MigrationReport
        {
            MigrationId = id,
            VmId = vmId,
            Source = _nodeName,
            Destination = destination,
            Status = "failed",
            Error = reason,
        };
        _handovers.Ended(id, handedOver: false);
        RecordFinished(id, report);
        _progress.Remove(id);
        if (_watchers.Remove(id, out var watchers))
        {
            foreach (var w in watchers)
            {
                w.Tell(new MigrationFinished(report));
            }
        }
    }
}
