using System.Diagnostics;
using Migration.Devices.Util;

namespace Migration.Host.Bench;

/// <summary>
/// Samples the working set (RSS, including mapped shared-memory pages such as guest RAM in /dev/shm) of this
/// process and optionally of a child every 50 ms on a dedicated thread, keeping the peaks. Spikes shorter than
/// the interval can be missed. The thread's own managed allocations (Process.Refresh reads /proc) are counted
/// so the bench can subtract them from the allocation figure.
/// </summary>
public sealed class WorkingSetSampler : IDisposable
{
    private readonly Process _self = Process.GetCurrentProcess();
    private readonly Process? _child;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _stop = new();
    private long _peakSelf;
    private long _peakChild;
    private long _peakChildPrivate = -1;
    private long _allocated;

    public WorkingSetSampler(Process? child, TimeSpan? interval = null)
    {
        _child = child;
        var every = interval ?? TimeSpan.FromMilliseconds(50);
        Sample();
        _thread = new Thread(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            while (!_stop.Wait(every))
            {
                Sample();
                Interlocked.Exchange(ref _allocated, GC.GetAllocatedBytesForCurrentThread() - before);
            }

            Sample();
            Interlocked.Exchange(ref _allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        })
        {
            IsBackground = true,
            Name = "bench-sampler",
            Priority = ThreadPriority.AboveNormal,
        };
        _thread.Start();
    }

    public long PeakSelf => Interlocked.Read(ref _peakSelf);

    public long PeakChild => Interlocked.Read(ref _peakChild);

    /// <summary>The child's peak private memory (<see cref="PrivateMemory"/>); null without a child or without /proc.</summary>
    public long? PeakChildPrivate => Interlocked.Read(ref _peakChildPrivate) is var p && p >= 0 ? p : null;

    /// <summary>Managed bytes the sampling thread allocated so far (updated after every sample; final after <see cref="Stop"/>).</summary>
    public long SamplerAllocatedBytes => Interlocked.Read(ref _allocated);

    public void Stop()
    {
        _stop.Set();
        _thread.Join();
    }

    public void Dispose()
    {
        if (_thread.IsAlive)
        {
            Stop();
        }

        _stop.Dispose();
        _self.Dispose();
    }

    private void Sample()
    {
        _self.Refresh();
        AtomicMax.Raise(ref _peakSelf, _self.WorkingSet64);
        if (_child is not null)
        {
            try
            {
                _child.Refresh();
                if (!_child.HasExited)
                {
                    AtomicMax.Raise(ref _peakChild, _child.WorkingSet64);
                    if (PrivateMemory.Of(_child.Id) is { } privateBytes)
                    {
                        AtomicMax.Raise(ref _peakChildPrivate, privateBytes);
                    }
                }
            }
            catch (InvalidOperationException)
            {
                // the child exited between Refresh and the read
            }
        }
    }
}
