using Migration.Devices.Device;

namespace Migration.Devices.Tests.Device;

/// <summary>Test helpers that drive a device's save side into chunks and its load side from chunks.</summary>
internal static class DeviceStreams
{
    /// <summary>Reads precopy (optionally letting the device change between reads), then stop-copy, as chunks of <paramref name="chunkSize"/>.</summary>
    public static List<byte[]> Save(IMigratableDevice device, int chunkSize, Action<IMigratableDevice>? duringPrecopy = null, int maxPrecopyRounds = 1000)
    {
        var chunks = new List<byte[]>();
        var buffer = new byte[chunkSize];
        device.StartPrecopy();
        for (int round = 0; round < maxPrecopyRounds; round++)
        {
            duringPrecopy?.Invoke(device);
            int n = device.ReadPrecopy(buffer);
            if (n == 0)
                break;
            chunks.Add(buffer[..n]);
        }
        device.StartStopCopy();
        int m;
        while ((m = device.ReadStopCopy(buffer)) > 0)
            chunks.Add(buffer[..m]);
        device.FinishStopCopy();
        return chunks;
    }

    public static void Load(IMigratableDevice device, IReadOnlyList<byte[]> chunks)
    {
        device.StartResuming();
        for (int i = 0; i < chunks.Count; i++)
            device.WriteChunk(i, chunks[i]);
        device.FinishResuming();
    }

    /// <summary>Re-cuts a stream into chunks of another size.</summary>
    public static List<byte[]> Rechunk(IEnumerable<byte[]> chunks, int size)
        => chunks.SelectMany(c => c).Chunk(size).ToList();
}
