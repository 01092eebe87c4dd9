using Migration.Devices.Util;

namespace Migration.Transport.Flow;

/// <summary>
/// The destination's byte budget for device-state chunks of one migration: bytes received but not yet
/// loaded into their device, over all devices. A receive channel reserves a chunk's length before it reads
/// the payload; the device's gate releases it after the loader wrote the chunk, and only then returns the
/// credit to the sender. A sender that respects its credit can therefore never make a reservation fail;
/// a failed reservation is a protocol violation by the peer, never back-pressure.
/// Threading: lock-free, called from every receive loop and gate of the migration.
/// </summary>
public sealed class DeviceBufferBudget
{
    private long _held;
    private long _peak;
    private long _reservedTotal;

    public DeviceBufferBudget(long budgetBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        BudgetBytes = budgetBytes;
    }

    /// <summary>Bytes the destination may hold; fixed at prepare and announced to the source.</summary>
    public long BudgetBytes { get; }

    /// <summary>Bytes held right now.</summary>
    public long HeldBytes => Volatile.Read(ref _held);

    /// <summary>Largest value <see cref="HeldBytes"/> ever had.</summary>
    public long PeakBytes => Volatile.Read(ref _peak);

    /// <summary>Bytes reserved over the budget's life (every device chunk received, once per chunk): the metrics' received device bytes.</summary>
    public long ReservedTotalBytes => Volatile.Read(ref _reservedTotal);

    /// <summary>Reserves <paramref name="bytes"/>; false (and nothing reserved) if that would exceed the budget.</summary>
    public bool TryReserve(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        while (true)
        {
            var held = Volatile.Read(ref _held);
            var next = held + bytes;
            if (next > BudgetBytes)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _held, next, held) == held)
            {
                AtomicMax.Raise(ref _peak, next);
                Interlocked.Add(ref _reservedTotal, bytes);
                return true;
            }
        }
    }

    /// <summary>Returns bytes reserved earlier. Releasing more than is held is a bug and throws.</summary>
    public void Release(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var after = Interlocked.Add(ref _held, -bytes);
        if (after < 0)
        {
            Interlocked.Add(ref _held, bytes);
            throw new InvalidOperationException($"device buffer budget released {bytes} bytes but only {after + bytes} were held");
        }
    }
}
