using System.Buffers;
using Akka.Actor;
using Migration.Actors.Destination;
using Migration.Devices.Device.Vfio;
using Migration.Transport.Flow;
using Xunit;

namespace Migration.Actors.Tests.Support;

/// <summary>
/// The complete saved state of a <see cref="SimulatedVfioDevice"/>, cut into a fixed number of chunks, with the
/// source's digest (as the loader formats it). <see cref="NewDestination"/> gives a fresh device with the same
/// options, already Resuming, wrapped for recording: loading the chunks in order reproduces <see cref="Digest"/>.
/// </summary>
internal sealed record SavedDeviceState(SimulatedVfioOptions Options, IReadOnlyList<byte[]> Chunks, string Digest)
{
    public long TotalBytes => Chunks.Sum(c => (long)c.Length);

    public int MaxChunkLength => Chunks.Max(c => c.Length);

    public int Count => Chunks.Count;

    public static SimulatedVfioOptions Vfio(string id, long stateBytes, int regionSize, long seed, int instance = 0) => new()
    {
        Id = id,
        Instance = instance,
        StateSizeBytes = stateBytes,
        RegionSize = regionSize,
        Seed = seed,
    };

    /// <summary>Saves a fresh device (Running -> StopCopy: a full save) and splits its stream into <paramref name="chunks"/> near-equal chunks.</summary>
    public static SavedDeviceState Save(SimulatedVfioOptions options, int chunks)
    {
        var source = new SimulatedVfioDevice(options);
        source.StartStopCopy();
        using var stream = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = source.ReadStopCopy(buffer)) > 0)
        {
            stream.Write(buffer, 0, n);
        }

        source.FinishStopCopy();
        var all = stream.ToArray();
        Assert.True(all.Length >= chunks, $"state of {all.Length} bytes cannot make {chunks} chunks");
        var parts = new byte[chunks][];
        for (var i = 0; i < chunks; i++)
        {
            var from = (int)((long)all.Length * i / chunks);
            var to = (int)((long)all.Length * (i + 1) / chunks);
            parts[i] = all[from..to];
        }

        return new SavedDeviceState(options, parts, source.ComputeDigest().ToString("x32"));
    }

    public RecordingDevice NewDestination(TimeSpan writeDelay = default)
    {
        var device = new RecordingDevice(new SimulatedVfioDevice(Options), writeDelay);
        device.StartResuming();
        return device;
    }

    /// <summary>
    /// Plays the receive loop for chunk <paramref name="index"/>: reserves its length in the budget (must succeed),
    /// copies it into a buffer rented from DeviceChunkBuffers (ownership passes to the gate) and tells the gate.
    /// </summary>
    public void Deliver(IActorRef gate, DeviceBufferBudget budget, int deviceIndex, int index, int channel = 0) =>
        DeliverBytes(gate, budget, deviceIndex, index, index == Chunks.Count - 1, Chunks[index], channel);

    public static void DeliverBytes(IActorRef gate, DeviceBufferBudget budget, int deviceIndex, long index, bool last, byte[] data, int channel = 0)
    {
        Assert.True(budget.TryReserve(data.Length), $"receive loop: reservation of {data.Length} bytes failed ({budget.HeldBytes} of {budget.BudgetBytes} held)");
        var buffer = DeviceChunkBuffers.Shared.Rent(data.Length);
        data.CopyTo(buffer, 0);
        gate.Tell(new DeviceChunkArrived(deviceIndex, index, last, buffer, data.Length, channel));
    }

    /// <summary>Number of arrivals that came while a lower index had not arrived yet (what the gate must count as out of order).</summary>
    public static long ExpectedOutOfOrder(IEnumerable<int> arrivalOrder, int count)
    {
        var seen = new bool[count];
        long outOfOrder = 0;
        foreach (var index in arrivalOrder)
        {
            for (var lower = 0; lower < index; lower++)
            {
                if (!seen[lower])
                {
                    outOfOrder++;
                    break;
                }
            }

            seen[index] = true;
        }

        return outOfOrder;
    }
}
