using Akka.Actor;
using Migration.Devices.Ram;
using Migration.Transport.Channels;

namespace Migration.Actors.Destination;

/// <summary>
/// What this incoming migration has received so far, told to the node every progress-interval and once more when the
/// guest is verified (the node's /metrics: migration_bytes_received_total and the device buffer). The figures are read
/// from counters the receive loops and the budget keep anyway (thread-safe reads); the data path makes no extra calls.
/// Threading: owned by the IncomingMigration and called only on its thread, with its timers; the receivers' counters
/// are written by their receive loops and only read here.
/// </summary>
internal sealed class IncomingTrafficMeter
{
    private const string TimerKey = "traffic";

    private readonly Guid _id;
    private readonly string _vmId;
    private readonly IActorRef _node;
    private readonly ITimerScheduler _timers;
    private readonly TimeSpan _interval;
    private readonly IncomingResources _resources;

    /// <summary>Every receiver this migration ran, including those of lost connections (their pages still count).</summary>
    private readonly List<PacketReceiver> _receivers = [];

    /// <param name="node">The IncomingMigration's parent, the HypervisorNode, which keeps the metrics.</param>
    public IncomingTrafficMeter(Guid id, string vmId, IActorRef node, ITimerScheduler timers, TimeSpan interval, IncomingResources resources)
    {
        _id = id;
        _vmId = vmId;
        _node = node;
        _timers = timers;
        _interval = interval;
        _resources = resources;
    }

    /// <summary>Receiving begins: a <see cref="TrafficTick"/> every interval until the final report.</summary>
    public void StartTicking() => _timers.StartPeriodicTimer(TimerKey, TrafficTick.Instance, _interval);

    /// <summary>A channel started its receiver (RecvChannelStarted).</summary>
    public void AddReceiver(PacketReceiver receiver) => _receivers.Add(receiver);

    /// <summary>Tells the node the figures now; <paramref name="final"/> (verified) also stops the ticks.</summary>
    public void Report(bool final)
    {
        if (final)
        {
            _timers.Cancel(TimerKey);
        }

        long pages = 0;
        foreach (var r in _receivers)
        {
            pages += r.NormalPages;
        }

        var budget = _resources.Budget;
        _node.Tell(new IncomingTraffic(_id, _vmId, pages * RamBlock.PageSize, budget.ReservedTotalBytes, budget.HeldBytes, budget.BudgetBytes));
    }
}
