using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Host.Cli;

/// <summary>
/// An actor in the client's ActorSystem that receives a migration's progress and final report, and exposes them to
/// the console thread: the latest progress (a volatile reference) and a task that completes with the report.
/// Nothing queues up: a slow console just sees the newest progress.
/// </summary>
public sealed class ProgressWatcher
{
    private readonly TaskCompletionSource<MigrationReport> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MigrationProgress? _latest;

    public ProgressWatcher(ActorSystem system)
    {
        Actor = system.ActorOf(Props.Create(() => new Relay(this)));
    }

    public IActorRef Actor { get; }

    public MigrationProgress? Latest => Volatile.Read(ref _latest);

    public Task<MigrationReport> Finished => _finished.Task;

    private sealed class Relay : ReceiveActor
    {
        public Relay(ProgressWatcher owner)
        {
            Receive<MigrationProgress>(p => Volatile.Write(ref owner._latest, p));
            Receive<MigrationFinished>(f => owner._finished.TrySetResult(f.Report));
        }
    }
}
