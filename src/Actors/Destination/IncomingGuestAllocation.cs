using Akka.Actor;
using Migration.Devices.Guest;
using Migration.Devices.Ram;

namespace Migration.Actors.Destination;

/// <summary>
/// The off-thread allocation of an incoming migration's guest: started once by the actor's PreStart, its result comes
/// back to the actor as <see cref="Allocated"/> or <see cref="AllocationFailed"/>. A result the actor never handled
/// (it stopped first: a crash, a stop from outside; the message then lies in dead letters) is a guest no one else has
/// seen, and <see cref="ReleaseIfUnhandled"/> gives its memory back to the node's pool when the allocation finishes.
/// Threading: Start, Handled and ReleaseIfUnhandled are called on the owning actor's thread only; the release itself
/// runs as the task's continuation, on the pool thread that finishes the allocation, or at once in PostStop if it has
/// already finished (GuestVm.Release is idempotent, the pool thread-safe).
/// </summary>
internal sealed class IncomingGuestAllocation
{
    private Task<GuestVm>? _task;
    private bool _handled;

    /// <summary>Creates the guest on a pool thread and pipes the result to <paramref name="self"/>.</summary>
    public void Start(GuestSpec spec, bool prefault, IReadOnlyDictionary<string, double> loadDelays, GuestMemoryPool? pool, IActorRef self)
    {
        _task = Task.Run(() => GuestFactory.CreateIncoming(spec, prefault, loadDelays, pool));
        _task.PipeTo(self, success: g => new Allocated(g), failure: e => new AllocationFailed(e.GetBaseException().Message));
    }

    /// <summary>The actor took the result (the guest is now its resources', or released by it, or the allocation failed).</summary>
    public void Handled() => _handled = true;

    /// <summary>From PostStop: when the result was never handled, the guest goes back to <paramref name="pool"/> once created.</summary>
    public void ReleaseIfUnhandled(GuestMemoryPool? pool)
    {
        if (_task is null || _handled)
        {
            return;
        }

        _task.ContinueWith(
            t => t.Result.Release(pool),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}
