namespace Migration.Transport.Channels;

/// <summary>
/// A fixed-capacity FIFO between one producer (a channel's actor) and one consumer (its sender thread): a ring array
/// under a lock, the consumer blocking in <see cref="TryTake"/> until a job arrives or the queue is completed. Never
/// grows (a full queue refuses the job: the producer exceeded the bound it promised) and allocates nothing per job.
/// </summary>
public sealed class BoundedJobQueue<T>(int capacity)
    where T : class
{
    private readonly T?[] _ring = new T?[capacity];
    private readonly object _lock = new();
    private int _head;
    private int _count;
    private bool _completed;

    public int Capacity => _ring.Length;

    /// <summary>Queues <paramref name="job"/>; false when full or completed (the job stays with the caller).</summary>
    public bool TryAdd(T job)
    {
        lock (_lock)
        {
            if (_completed || _count == _ring.Length)
            {
                return false;
            }

            _ring[(_head + _count) % _ring.Length] = job;
            _count++;
            Monitor.Pulse(_lock);
            return true;
        }
    }

    /// <summary>Blocks until a job is queued (true) or the queue is completed and empty (false).</summary>
    public bool TryTake(out T job)
    {
        lock (_lock)
        {
            while (_count == 0)
            {
                if (_completed)
                {
                    job = null!;
                    return false;
                }

                Monitor.Wait(_lock);
            }

            job = _ring[_head]!;
            _ring[_head] = null;
            _head = (_head + 1) % _ring.Length;
            _count--;
            return true;
        }
    }

    /// <summary>No more jobs: TryTake returns what is queued, then false (idempotent).</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _completed = true;
            Monitor.PulseAll(_lock);
        }
    }
}
