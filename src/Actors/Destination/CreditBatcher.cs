namespace Migration.Actors.Destination;

/// <summary>
/// When a reorder gate returns device credit: it collects the loaded chunks of one device (always consecutive
/// indices, the loader writes them in order) and says when the batch must go out as one DeviceCredit: after
/// <see cref="CreditBatchPolicy.Chunks"/> chunks, once it holds <see cref="CreditBatchPolicy.MaxBytes"/> bytes (so the
/// source never waits on more than that much of its window), or once its first chunk is
/// <see cref="CreditBatchPolicy.Interval"/> old. The gate also flushes on a timer when no load follows, and at the
/// device's last chunk. A pure class, owned by one ReorderGate and used only on its thread.
/// </summary>
public sealed class CreditBatcher(CreditBatchPolicy policy)
{
    private long _firstTimestamp;

    public CreditBatchPolicy Policy { get; } = policy;

    public long First { get; private set; }

    public int Chunks { get; private set; }

    public long Bytes { get; private set; }

    public long LoadTicks { get; private set; }

    public bool IsEmpty => Chunks == 0;

    /// <summary>
    /// Adds loaded chunk <paramref name="index"/>; returns true when the batch is due now. The index must follow the
    /// batch's last one (the gate's load order guarantees it; anything else is a bug of the gate, so it throws).
    /// </summary>
    public bool Add(long index, int length, long loadTicks, long nowTimestamp)
    {
        if (Chunks == 0)
        {
            First = index;
            _firstTimestamp = nowTimestamp;
        }
        else if (index != First + Chunks)
        {
            throw new InvalidOperationException($"credit batch {First}..{First + Chunks - 1}: chunk {index} loaded out of order");
        }

        Chunks++;
        Bytes += length;
        LoadTicks += loadTicks;
        return Chunks >= Policy.Chunks || Bytes >= Policy.MaxBytes || IsOld(nowTimestamp);
    }

    /// <summary>The batch's first chunk waited at least the policy's interval.</summary>
    public bool IsOld(long nowTimestamp) =>
        Chunks > 0 && (nowTimestamp - _firstTimestamp) * 1000.0 / System.Diagnostics.Stopwatch.Frequency >= Policy.Interval.TotalMilliseconds;

    /// <summary>Empties the batch and returns it (first index, chunks, bytes, summed load ticks).</summary>
    public (long First, int Chunks, long Bytes, long LoadTicks) Take()
    {
        var batch = (First, Chunks, Bytes, LoadTicks);
        Chunks = 0;
        Bytes = 0;
        LoadTicks = 0;
        return batch;
    }
}

/// <summary>
/// How a gate batches credits: at most <paramref name="Chunks"/> chunks or <paramref name="MaxBytes"/> bytes per
/// DeviceCredit, and no chunk's credit held longer than about <paramref name="Interval"/> (plus one scheduler tick when
/// no further load comes). <see cref="PerChunk"/> returns every chunk's credit at once.
/// </summary>
public sealed record CreditBatchPolicy(int Chunks, long MaxBytes, TimeSpan Interval)
{
    public static readonly CreditBatchPolicy PerChunk = new(1, 1, TimeSpan.Zero);

    /// <summary>
    /// The policy for a migration: batches of <paramref name="chunks"/> chunks, but never holding more than half of one
    /// device's share of the budget, nor so much that less than one chunk of the share is left to the source (its
    /// window per device is max(chunk, budget / devices): DeviceCreditPool). With a budget of one chunk per device
    /// every chunk is credited on its own.
    /// </summary>
    public static CreditBatchPolicy For(int chunks, TimeSpan interval, long budgetBytes, int chunkSize, int devices)
    {
        var share = Math.Max(chunkSize, devices == 0 ? budgetBytes : budgetBytes / devices);
        return new CreditBatchPolicy(Math.Max(1, chunks), Math.Max(1, Math.Min(share / 2, share - chunkSize)), interval);
    }
}
