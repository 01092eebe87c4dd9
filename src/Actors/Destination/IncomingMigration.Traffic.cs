using Akka.Actor;
using Migration.Devices.Ram;
using Migration.Transport.Channels;

namespace Migration.Actors.Destination;

// What this incoming migration has received so far, told to the node every progress-interval and once more when the
// guest is verified (the node's /metrics: migration_bytes_received_total and the device buffer). The figures are read
// from counters the receive loops and the budget keep anyway (thread-safe reads); the data path makes no extra calls.
public sealed partial class IncomingMigration
{
    /// <summary>Every receiver this migration ran, including those of lost connections (their pages still count).</summary>
    private readonly List<PacketReceiver> _receivers = [];

    private void ReportTraffic(bool final)
    {
        if (final)
        {
            Timers.Cancel("traffic");
        }

        long pages = 0;
        foreach (var r in _receivers)
        {
            pages += r.NormalPages;
        }

        Context.Parent.Tell(new IncomingTraffic(Id, _request.Spec.Id, pages * RamBlock.PageSize, _budget?.ReservedTotalBytes ?? 0,
            _budget?.HeldBytes ?? 0, _budget?.BudgetBytes ?? _settings.DeviceBufferBudget));
    }

    private sealed record TrafficTick : INoSerializationVerificationNeeded
    {
        public static readonly TrafficTick Instance = new();
    }
}
