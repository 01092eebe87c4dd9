namespace Migration.Actors.Source;

/// <summary>
/// The source's view of the destination's device-buffer budget. Before asking a device saver for a chunk the
/// coordinator reserves chunk-size bytes here; when the chunk is read its reservation shrinks to the real length;
/// the destination returns the bytes as credit once the chunk is loaded. So the device bytes sent but not yet
/// loaded never exceed the budget, over all devices.
/// Fairness: one device may hold at most max(chunk-size, budget / devices still streaming) of it, so a slow device
/// cannot take the whole budget while the others wait; with a budget of one chunk the devices simply take turns. A
/// device whose last chunk was read (<see cref="DeviceEnded"/>) leaves the split: after the stop the small devices
/// end first, and the largest one's stop-copy stream then uses the whole budget instead of waiting for credit with
/// its share only (in the default demo gpu0's 32 MiB against a 21 MiB share).
/// Owned by the MigrationCoordinator; used only on its thread.
/// </summary>
public sealed class DeviceCreditPool
{
    private readonly long[] _perDevice;
    private readonly bool[] _ended;
    private long _perDeviceCap;

    public DeviceCreditPool(long budgetBytes, int chunkSize, int devices)
    {
        if (budgetBytes < chunkSize)
        {
            throw new ArgumentException($"device-buffer-budget {budgetBytes} bytes is smaller than chunk-size {chunkSize} bytes");
        }

        BudgetBytes = budgetBytes;
        ChunkSize = chunkSize;
        _perDevice = new long[devices];
        _ended = new bool[devices];
        _perDeviceCap = Cap(devices);
    }

    /// <summary>The most one device may hold now.</summary>
    public long PerDeviceCap => _perDeviceCap;

    /// <summary>
    /// The device's last chunk was read: it asks for no more credit, so the others share the budget without it. Its
    /// bytes in flight stay counted until credited (the sum over all devices never exceeds the budget).
    /// </summary>
    public void DeviceEnded(int device)
    {
        if (!_ended[device])
        {
            _ended[device] = true;
            _perDeviceCap = Cap(_ended.Count(e => !e));
        }
    }

    private long Cap(int streaming) => Math.Max(ChunkSize, streaming <= 0 ? BudgetBytes : BudgetBytes / streaming);

    public long BudgetBytes { get; }
    public int ChunkSize { get; }

    /// <summary>Bytes reserved or in flight, not yet credited back.</summary>
    public long InFlightBytes { get; private set; }

    public long InFlight(int device) => _perDevice[device];

    public bool CanReserveChunk(int device) =>
        InFlightBytes + ChunkSize <= BudgetBytes && _perDevice[device] + ChunkSize <= _perDeviceCap;

    public void ReserveChunk(int device)
    {
        if (!CanReserveChunk(device))
        {
            throw new InvalidOperationException($"device {device}: no credit for a chunk ({InFlightBytes} of {BudgetBytes} bytes in flight)");
        }

        InFlightBytes += ChunkSize;
        _perDevice[device] += ChunkSize;
    }

    /// <summary>The chunk turned out to be <paramref name="actualBytes"/> long (or 0: nothing was read).</summary>
    public void Shrink(int device, long actualBytes)
    {
        var unused = ChunkSize - actualBytes;
        if (unused < 0)
        {
            throw new InvalidOperationException($"device {device}: chunk of {actualBytes} bytes exceeds chunk-size {ChunkSize}");
        }

        InFlightBytes -= unused;
        _perDevice[device] -= unused;
    }

    /// <summary>Credit returned by the destination.</summary>
    public void Return(int device, long bytes)
    {
        if (bytes < 0 || bytes > _perDevice[device])
        {
            throw new InvalidOperationException($"device {device}: destination returned {bytes} bytes of credit but only {_perDevice[device]} are in flight");
        }

        InFlightBytes -= bytes;
        _perDevice[device] -= bytes;
    }
}
