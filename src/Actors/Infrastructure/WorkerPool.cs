using System.Collections.Concurrent;

namespace Migration.Actors.Infrastructure;

/// <summary>
/// A small pool of dedicated threads owned by one migration: created when the migration starts, disposed
/// when it ends. Device savers (source) and loaders (destination) run their blocking device I/O here so
/// that neither Akka's dispatcher nor the .NET thread pool is ever blocked by a slow device.
/// Results come back to actors as messages (the caller pipes the returned Task to itself).
/// The queue is bounded: each saver/loader has at most a few work items outstanding, so the capacity
/// (given at creation) is never reached in correct use; if it is, <see cref="Run{T}"/> throws.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    private readonly BlockingCollection<Action> _queue;
    private readonly Thread[] _threads;
    private int _disposed;

    public WorkerPool(string name, int threads, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        _queue = new BlockingCollection<Action>(new ConcurrentQueue<Action>(), capacity);
        _threads = new Thread[threads];
        _running = threads;
        for (var i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Work) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    public int ThreadCount => _threads.Length;

    /// <summary>Runs <paramref name="work"/> on a pool thread; the task carries its result or exception.</summary>
    public Task<T> Run<T>(Func<T> work)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Action item = () =>
        {
            try
            {
                tcs.TrySetResult(work());
            }
            catch (Exception e)
            {
                tcs.TrySetException(e);
            }
        };
        if (Volatile.Read(ref _disposed) != 0)
        {
            tcs.TrySetException(new ObjectDisposedException(nameof(WorkerPool)));
            return tcs.Task;
        }

        if (!_queue.TryAdd(item))
        {
            throw new InvalidOperationException($"worker pool queue is full ({_queue.BoundedCapacity} items): a caller exceeded its outstanding-work bound");
        }

        return tcs.Task;
    }

    /// <summary>
    /// Completes once the pool was disposed and every thread has exited: no work item runs any more, and none will.
    /// </summary>
    public Task Drained => _drained.Task;

    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;

    private void Work()
    {
        try
        {
            foreach (var item in _queue.GetConsumingEnumerable())
            {
                item();
            }
        }
        catch (ObjectDisposedException)
        {
            // disposed while waiting
        }
        finally
        {
            if (Interlocked.Decrement(ref _running) == 0)
            {
                _drained.TrySetResult();
            }
        }
    }

    /// <summary>Stops accepting work; queued items still run; threads exit when the queue is drained. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.CompleteAdding();
    }
}
