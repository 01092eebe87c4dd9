using Akka.Actor;
using Migration.Actors.Messages;

namespace Migration.Host.Bench;

/// <summary>
/// Receives a migration's progress and final report (like Cli.ProgressWatcher) and feeds the progress reports to
/// an optional <see cref="SteadyStateProbe"/>.
/// </summary>
public sealed class BenchWatcher
{
    private readonly TaskCompletionSource<MigrationReport> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BenchWatcher(ActorSystem system, SteadyStateProbe? probe)
    {
        Actor = system.ActorOf(Props.Create(() => new Relay(this, probe)));
    }

    public IActorRef Actor { get; }

    public Task<MigrationReport> Finished => _finished.Task;

    private sealed class Relay : ReceiveActor
    {
        public Relay(BenchWatcher owner, SteadyStateProbe? probe)
        {
            Receive<MigrationProgress>(p => probe?.OnProgress(p));
            Receive<MigrationFinished>(f => owner._finished.TrySetResult(f.Report));
        }
    }
}

/// <summary>
/// Allocation and gen2 collections of this process during the precopy phase: sampled at every progress report whose
/// phase is "precopy", compared between the first and the last such report. This leaves out setup (allocating
/// and connecting), stop-copy and verification, i.e. it is the cost per GiB while bytes stream. Bytes allocated by the
/// bench's own working-set sampler are subtracted.
/// </summary>
public sealed class SteadyStateProbe(Func<long>? excludedAllocatedBytes = null)
{
    private const long MinBytes = 64L << 20;
    private (long Alloc, int Gen2, long Sent)? _first;
    private (long Alloc, int Gen2, long Sent)? _last;

    public void OnProgress(MigrationProgress p)
    {
        if (p.Phase != "precopy")
        {
            return;
        }

        // The bench's own sampling thread allocates (it reads /proc); its bytes are not the migration's. Precise: the
        // sampler's count is exact, and subtracting it from the imprecise total (which leaves out what the threads'
        // allocation contexts hold) made a quiet span's figure come out below zero. A few samples per second.
        var sample = (GC.GetTotalAllocatedBytes(true) - (excludedAllocatedBytes?.Invoke() ?? 0), GC.CollectionCount(2), p.BytesSent);
        _first ??= sample;
        _last = sample;
    }

    private bool Valid => _first is { } f && _last is { } l && l.Sent - f.Sent >= MinBytes;

    public double? MiBPerGiB => Valid
        ? (_last!.Value.Alloc - _first!.Value.Alloc) / (double)(1 << 20) / ((_last.Value.Sent - _first.Value.Sent) / (double)(1L << 30))
        : null;

    public int? Gen2 => Valid ? _last!.Value.Gen2 - _first!.Value.Gen2 : null;
}
