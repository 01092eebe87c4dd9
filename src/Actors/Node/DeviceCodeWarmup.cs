using System.Diagnostics;
using Migration.Devices.Device;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>
/// Runs the device save and load code once per process at node start, on tiny devices of every kind, so that its
/// first use is not a migration's stop phase. Measured in the default demo (a fresh process): the structured device's
/// first load cost 36-150 ms of JIT and type loading (37 ms idle, 150-500 ms at load average 30-60) and the VFIO
/// device's stop-copy path, read only after the guest stops, its own first-call cost; both sat inside the downtime,
/// since a destination loads its devices for the first time after the stop. Costs ~100 ms of CPU once, before the
/// node serves anything. Thread-safe; later calls return at once.
/// </summary>
public static class DeviceCodeWarmup
{
    private static int _done;

    public static void Run()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0)
        {
            return;
        }

        // A VFIO device with precopy and stop-copy data (two 64 KiB regions), and the demo's structured device.
        DeviceSpec[] specs =
        [
            new("warmup-vfio", DeviceKind.Vfio, 0, 128 << 10, 64 << 10) { Seed = 1 },
            new("warmup-net", DeviceKind.Structured) { Seed = 2 },
        ];
        var buffer = new byte[64 << 10];
        foreach (var spec in specs)
        {
            var source = GuestFactory.CreateDevice(spec);
            var destination = GuestFactory.CreateDevice(spec);
            destination.StartResuming();
            source.StartPrecopy();
            long index = 0;
            int n;
            while (source.QueryPrecopy().Total > 0 && (n = source.ReadPrecopy(buffer)) > 0)
            {
                destination.WriteChunk(index++, buffer.AsSpan(0, n));
            }

            source.StartStopCopy();
            while (source.StopCopyRemainingBytes > 0 && (n = source.ReadStopCopy(buffer)) > 0)
            {
                destination.WriteChunk(index++, buffer.AsSpan(0, n));
            }

            source.FinishStopCopy();
            destination.FinishResuming();
            if (source.ComputeDigest() != destination.ComputeDigest())
            {
                // The devices are simulated and deterministic: a mismatch here is a bug, not a runtime condition.
                throw new UnreachableException($"device warm-up: {spec.Id} loaded with a different digest");
            }

            destination.Resume();
            source.AbortToRunning();
        }
    }
}
