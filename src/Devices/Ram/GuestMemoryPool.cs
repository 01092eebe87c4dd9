using System.Diagnostics;

namespace Migration.Devices.Ram;

/// <summary>
/// A node's pool of guest memory that is already touched (issue 9 point 1): private anonymous ranges that departed or
/// discarded guests left behind, or that the node populated ahead of need (<see cref="Populate"/>). An incoming guest
/// built over pooled memory pays no first-touch page clearing while its bytes arrive (71 % of destination CPU with
/// fresh memory), the equivalent of QEMU's pre-touched destination.
///
/// Safety: a taken block is <see cref="RamBlock.Recycled"/> and may hold a former guest's bytes; its owner zeroes every
/// page the stream did not write before the guest resumes (IncomingRamTracker). A returned range is quarantined for
/// <c>quarantine</c> before it is handed out again, so a straggler of its former owner (a receive loop finishing its
/// last packet, a digest task: the same grace <see cref="AnonymousMapping.Retire"/> gives) cannot write into the next
/// guest.
/// Bounded: it never holds more than <see cref="MaxBytes"/>; the node trims it (<see cref="Trim"/>) so that guests
/// plus pool stay within the node's memory capacity. Thread-safe (one lock; no memory is touched under it except by
/// unmapping).
/// </summary>
public sealed unsafe class GuestMemoryPool : IDisposable
{
    private readonly object _lock = new();
    private readonly List<Range> _ranges = new();
    private readonly long _quarantineTicks;
    private long _heldBytes;
    private long _reusedBytes;
    private long _populatedBytes;
    private bool _disposed;

    /// <param name="maxBytes">Most bytes held at once (0 = keep nothing).</param>
    /// <param name="quarantine">How long a returned range waits before it is handed out again.</param>
    public GuestMemoryPool(long maxBytes, TimeSpan quarantine)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        MaxBytes = maxBytes;
        _quarantineTicks = (long)(quarantine.TotalSeconds * Stopwatch.Frequency);
    }

    public long MaxBytes { get; }

    /// <summary>True where pooling works (Linux anonymous memory); elsewhere the pool stays empty.</summary>
    public static bool Supported => AnonymousMapping.Supported;

    public PoolState State()
    {
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            return new PoolState(_heldBytes, _ranges.Where(r => r.ReadyAt <= now).Sum(r => r.Bytes), MaxBytes, _reusedBytes, _populatedBytes);
        }
    }

    /// <summary>
    /// A block of <paramref name="sizeBytes"/> over ready pooled memory (carved from the smallest ready range that is
    /// large enough), or null if none is. The caller owns the block (Dispose, or <see cref="Return"/>).
    /// </summary>
    public RamBlock? TryTake(string name, long sizeBytes)
    {
        if (sizeBytes <= 0 || sizeBytes % RamBlock.PageSize != 0)
        {
            throw new ArgumentException($"pooled block '{name}': size {sizeBytes} must be a positive multiple of {RamBlock.PageSize}", nameof(sizeBytes));
        }

        nint memory;
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            // Best fit: the smallest ready range that is large enough, so a small guest does not split a range a
            // large one could use whole.
            var i = -1;
            for (var k = 0; k < _ranges.Count; k++)
            {
                if (_ranges[k].ReadyAt <= now && _ranges[k].Bytes >= sizeBytes && (i < 0 || _ranges[k].Bytes < _ranges[i].Bytes))
                {
                    i = k;
                }
            }

            if (i < 0)
            {
                return null;
            }

            var range = _ranges[i];
            memory = range.Address;
            if (range.Bytes == sizeBytes)
            {
                _ranges.RemoveAt(i);
            }
            else
            {
                _ranges[i] = range with { Address = range.Address + (nint)sizeBytes, Bytes = range.Bytes - sizeBytes };
            }

            _heldBytes -= sizeBytes;
            _reusedBytes += sizeBytes;
        }

        return RamBlock.OverPooledMemory(name, sizeBytes, (byte*)memory);
    }

    /// <summary>
    /// Takes back a block's memory (quarantined) if it is anonymous and fits under <see cref="MaxBytes"/>; otherwise
    /// disposes the block. Either way the block is ended: the caller must have stopped its own users of it.
    /// </summary>
    public void Return(RamBlock block)
    {
        lock (_lock)
        {
            if (!_disposed && block.IsAnonymous && _heldBytes + block.SizeBytes <= MaxBytes && block.TryDetachMemory(out var memory))
            {
                _ranges.Add(new Range(memory, block.SizeBytes, Stopwatch.GetTimestamp() + _quarantineTicks));
                _heldBytes += block.SizeBytes;
                return;
            }
        }

        block.Dispose();
    }

    /// <summary>
    /// Maps and faults in up to <paramref name="bytes"/> more (in ranges of <paramref name="rangeBytes"/>, each in one
    /// madvise MADV_POPULATE_WRITE on THP-advised memory), as far as <see cref="MaxBytes"/> allows; ready at once.
    /// Costs the kernel's page clearing now, off any migration's path. Returns the bytes added.
    /// </summary>
    public long Populate(long bytes, long rangeBytes = 1L << 30)
    {
        if (!Supported)
        {
            return 0;
        }

        long added = 0;
        while (added < bytes)
        {
            long size;
            lock (_lock)
            {
                size = Math.Min(Math.Min(rangeBytes, bytes - added), MaxBytes - _heldBytes) / RamBlock.PageSize * RamBlock.PageSize;
                if (_disposed || size <= 0)
                {
                    break;
                }

                _heldBytes += size; // reserved while it is populated outside the lock
            }

            byte* memory;
            try
            {
                memory = AnonymousMapping.Map(size);
            }
            catch
            {
                lock (_lock)
                {
                    _heldBytes -= size; // the reservation above: nothing was mapped
                }

                throw;
            }

            AnonymousMapping.PopulateWrite(memory, size);
            lock (_lock)
            {
                if (_disposed)
                {
                    _heldBytes -= size;
                    AnonymousMapping.Retire(memory, size);
                    break;
                }

                _ranges.Add(new Range((nint)memory, size, 0));
                _populatedBytes += size;
            }

            added += size;
        }

        return added;
    }

    /// <summary>Releases ranges (newest first) until at most <paramref name="keepBytes"/> are held; returns the bytes released.</summary>
    public long Trim(long keepBytes)
    {
        long released = 0;
        lock (_lock)
        {
            while (_heldBytes > Math.Max(0, keepBytes) && _ranges.Count > 0)
            {
                var range = _ranges[^1];
                _ranges.RemoveAt(_ranges.Count - 1);
                _heldBytes -= range.Bytes;
                released += range.Bytes;
                AnonymousMapping.Retire((byte*)range.Address, range.Bytes);
            }
        }

        return released;
    }

    /// <summary>Releases every range (retired like a disposed block's memory). Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
        }

        Trim(0);
    }

    private readonly record struct Range(nint Address, long Bytes, long ReadyAt);
}

/// <summary>A pool's figures: bytes held, of which ready (out of quarantine), its bound, and bytes handed out / populated so far.</summary>
public sealed record PoolState(long HeldBytes, long ReadyBytes, long MaxBytes, long ReusedBytes, long PopulatedBytes);
