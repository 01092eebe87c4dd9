using Akka.Actor;
using Migration.Actors.Infrastructure;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Migration.Transport.Flow;
using Migration.Transport.Wire;

namespace Migration.Actors.Destination;

/// <summary>
/// What one incoming migration allocated and must give back: the guest being received (its RAM and devices), the RAM
/// tracker, the device buffer budget, the receive limits, the migration's worker pool for device loading, and one
/// ReorderGate per device. <see cref="Start"/> creates them once the guest is allocated; <see cref="Release"/> (the
/// actor's PostStop) frees whatever was created, the guest too unless <see cref="HandGuestToNode"/> gave it away.
/// Ownership: the actor's until it ends; the gates are the actor's children (created with its context) and are
/// stopped before PostStop runs. Reading a part before Start created it throws: the states that use them (Receiving,
/// Verified) are entered only after Start.
/// Threading: owned by the IncomingMigration and called only on its thread.
/// </summary>
internal sealed class IncomingResources
{
    private GuestVm? _guest;
    private IncomingRamTracker? _ramTracker;
    private DeviceBufferBudget? _budget;
    private ReceiveLimits? _limits;
    private WorkerPool? _pool;
    private IActorRef[] _gates = [];

    /// <summary>The guest being received; null before allocation and once it was handed to the node.</summary>
    public GuestVm? Guest => _guest;

    public IncomingRamTracker RamTracker => _ramTracker ?? throw NotStarted();

    public DeviceBufferBudget Budget => _budget ?? throw NotStarted();

    public ReceiveLimits Limits => _limits ?? throw NotStarted();

    /// <summary>One ReorderGate per device, by device index (empty before Start).</summary>
    public IActorRef[] Gates => _gates;

    /// <summary>
    /// Takes the allocated guest and prepares to receive it: RAM tracker, budget, limits, chunk buffers, the worker
    /// pool, devices in RESUMING, one gate per device (crediting <paramref name="source"/>, reporting to
    /// <paramref name="owner"/>). Each part is kept as soon as it exists, so a failure half-way frees what was made.
    /// </summary>
    public void Start(GuestVm guest, MigrationSettings settings, IActorContext context, IActorRef owner, IActorRef source, Guid id)
    {
        _guest = guest;
        _ramTracker = new IncomingRamTracker(guest.Blocks, guest.Blocks.Select(b => b.Recycled).ToArray(), IncomingRamTracker.DefaultInterval, settings.PopulateAhead,
            settings.EffectivePopulateThreads);
        var devices = guest.Devices;
        _budget = new DeviceBufferBudget(settings.DeviceBufferBudget);
        _limits = new ReceiveLimits(
            settings.Codec, settings.PacketPages, settings.ChunkSize,
            guest.Blocks.Select(b => (long)b.PageCount).ToArray(),
            devices.Select(d => DeviceSlot.Of((uint)d.Identity.Instance)).ToArray());
        if (devices.Count > 0)
        {
            // The receive loops rent every chunk from the node's chunk pool: fill it now, at prepare, so that no chunk
            // buffer is allocated while device state streams (issue 9's steady-allocation target), for as many chunks as
            // can be buffered at once: the budget, and no more than the devices' state (the pool keeps what it is filled
            // with, so a guest with little device state must not pin a whole budget of buffers).
            DeviceChunkBuffers.Prepare(Math.Min(_budget.BudgetBytes, StateInChunks(guest.Spec, settings.ChunkSize)), settings.ChunkSize);
        }

        // The migration's own pool for device loading: created now, disposed when this migration ends.
        _pool = new WorkerPool($"load-{id.ToString()[..8]}", Math.Clamp(devices.Count, 1, Environment.ProcessorCount), Math.Max(16, devices.Count * 4));
        foreach (var d in devices)
        {
            d.StartResuming();
        }

        var batching = CreditBatchPolicy.For(settings.CreditBatchChunks, settings.CreditBatchInterval, _budget.BudgetBytes, settings.ChunkSize, devices.Count);
        var pool = _pool;
        var budget = _budget;
        _gates = devices.Select((d, i) =>
            context.ActorOf(ReorderGate.Props(i, id, d, pool, budget, owner, source, batching), $"gate-{i}")).ToArray();
    }

    /// <summary>The guest runs now and the node's registry owns it: <see cref="Release"/> leaves it alone.</summary>
    public void HandGuestToNode() => _guest = null;

    /// <summary>
    /// The migration ended (PostStop): disposes the worker pool and the RAM tracker, and discards a guest still held
    /// (devices reset, memory back to the node's pool of <paramref name="system"/>).
    /// </summary>
    public void Release(ActorSystem system)
    {
        // Children (channels, gates, loaders) are stopped before this runs; the loaders' last device calls may
        // still be queued on the pool, which lets them finish before its threads exit.
        _pool?.Dispose();
        _ramTracker?.Dispose();
        if (_guest is not null)
        {
            foreach (var d in _guest.Devices)
            {
                try
                {
                    d.Reset();
                }
                catch (Exception)
                {
                    // best effort: the guest is discarded
                }
            }

            // Discarded: the memory goes to the node's pool (quarantined against stragglers). A loader still writing on
            // the worker pool holds no RAM; devices are managed objects.
            _guest.Release(NodeMemoryPool.Get(system).Pool);
            _guest = null;
        }
    }

    /// <summary>Bytes of whole chunks that hold every device's state (a structured device's few bytes: one chunk).</summary>
    internal static long StateInChunks(GuestSpec spec, int chunkSize) =>
        spec.Devices.Sum(d => Math.Max(1, (Math.Max(0, d.StateBytes) + chunkSize - 1) / chunkSize) * (long)chunkSize);

    private static InvalidOperationException NotStarted() => new("the incoming migration's guest is not allocated yet");
}
