using System.Diagnostics;
using Migration.Devices.Ram;

namespace Migration.Devices.Workload;

/// <summary>
/// Simulated guest CPU that dirties RAM in the pattern of QEMU's migration-test guest: it increments byte 0 of
/// every page, page after page across all blocks in list order, wrapping to the first page forever. Each
/// increment is <c>page[0]++</c> then <c>block.MarkDirty(page)</c> (write-then-mark) and counts as 4096 bytes
/// dirtied. <see cref="WorkloadPatternChecker"/> verifies the resulting invariant after a migration.
/// Ownership: the workload owns byte 0 of every page of its blocks; nothing else may write it while it exists
/// (other bytes are free). It does not own the blocks: dispose the workload before the blocks.
/// Threading: one dedicated background thread does all writes, in slices of about 1 ms worth of pages, holding
/// <c>_gate</c> during a slice. All public members are thread-safe; <see cref="Pause"/> is synchronous.
/// </summary>
public sealed unsafe class GuestWorkload : IDisposable
{
    /// <summary>Most pages written in one slice (bounds Pause latency when running flat out).</summary>
    private const int MaxSlicePages = 4096;
    /// <summary>Pacing debt larger than this is forgiven (a rate above what is achievable just runs flat out).</summary>
    private static readonly TimeSpan MaxBacklog = TimeSpan.FromMilliseconds(20);

    private readonly RamBlock[] _blocks;
    private readonly Thread _thread;
    private readonly object _gate = new();
    /// <summary>Control callers waiting for the gate; the worker backs off while non-zero (Monitor is not fair).</summary>
    private int _controlWaiters;
    // Guarded by _gate:
    private long _rateBytesPerSecond;
    private int _throttlePercent;
    private bool _paused;
    private long _pausedAtTicks; // Stopwatch timestamp of the Pause that stopped a running guest; 0 when not paused
    private bool _started;
    private bool _stopping;
    private long _paceStartTicks;
    private long _pacePages;
    private TimeSpan _throttleDebt;
    // The rate the guest reached unthrottled (pages/s over windows of AchievedWindow), what a throttle is a share of:
    private long _achievedWindowStartTicks;
    private long _achievedWindowPages;
    private double _achievedPagesPerSecond;
    // Worker thread only (read by others only under _gate):
    private int _blockIndex;
    private long _pageIndex;
    private long _pagesDirtied;

    /// <param name="blocks">Blocks to dirty, in pattern order. Byte 0 of every page should start equal (see <see cref="GuestRamFiller"/>).</param>
    /// <param name="rateBytesPerSecond">Dirty rate in bytes/s (4096 per page increment); 0 = idle; above what is achievable = flat out.</param>
    public GuestWorkload(IReadOnlyList<RamBlock> blocks, long rateBytesPerSecond)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count == 0)
            throw new ArgumentException("a workload needs at least one RAM block", nameof(blocks));
        ArgumentOutOfRangeException.ThrowIfNegative(rateBytesPerSecond);
        _blocks = blocks.ToArray();
        _rateBytesPerSecond = rateBytesPerSecond;
        _thread = new Thread(Run) { IsBackground = true, Name = "guest-workload" };
    }

    /// <summary>Page increments done so far (exact once <see cref="Pause"/> returned).</summary>
    public long PagesDirtied => Interlocked.Read(ref _pagesDirtied);

    /// <summary>True between Start and Dispose while not paused.</summary>
    public bool IsRunning
    {
        get { lock (_gate) return _started && !_paused && !_stopping; }
    }

    /// <summary>Current rate in bytes/s.</summary>
    public long RateBytesPerSecond
    {
        get { lock (_gate) return _rateBytesPerSecond; }
    }

    /// <summary>
    /// How much the guest is slowed down, percent of its run time (QEMU's cpu-throttle-percentage, used by
    /// auto-converge): 0 = not at all, 99 = it runs 1 % of the time. It dirties (100 - throttle) % of what it did
    /// unthrottled: the pace becomes that share of the lower of its rate and the rate it reached unthrottled (a flat-out
    /// guest is measured, so the throttle holds on a loaded machine too, where the thread's turns, not its work, set
    /// the pace; there its sleeps overshoot, so it dirties less than that share). Before any unthrottled measurement,
    /// a flat-out guest sleeps throttle / (100 - throttle) times the length of each slice instead.
    /// </summary>
    public int ThrottlePercent
    {
        get { lock (_gate) return _throttlePercent; }
    }

    /// <summary>Sets the throttle (0..99, see <see cref="ThrottlePercent"/>); pacing restarts from now.</summary>
    public void SetThrottle(int percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 99);
        using (EnterControl())
        {
            _throttlePercent = percent;
            _throttleDebt = TimeSpan.Zero;
            ResetPacing();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Starts the worker thread. Throws if already started or disposed.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (_started)
                throw new InvalidOperationException("guest workload already started");
            _started = true;
            ResetPacing();
        }
        _thread.Start();
    }

    /// <summary>Changes the dirty rate (bytes/s, 0 = idle); pacing restarts from now.</summary>
    public void SetRate(long rateBytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rateBytesPerSecond);
        using (EnterControl())
        {
            _rateBytesPerSecond = rateBytesPerSecond;
            ResetPacing();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Stops the guest. Synchronous: when this returns no write is in progress and none happens until
    /// <see cref="Resume"/> (the worker only writes while holding the gate and re-checks the flag under it).
    /// </summary>
    public void Pause()
    {
        using (EnterControl())
        {
            if (!_paused)
                _pausedAtTicks = Stopwatch.GetTimestamp();
            _paused = true;
        }
    }

    /// <summary>
    /// The guest's "vCPU state": where the next write goes, as (block index, page index). Migrated with the guest
    /// so the destination continues the pass exactly where the source stopped (as QEMU migrates CPU registers);
    /// without it the resumed guest would start a new pass and break the pattern invariant.
    /// Read it only while paused (or before start).
    /// </summary>
    public (int Block, long Page) Position
    {
        get
        {
            using (EnterControl())
                return (_blockIndex, _pageIndex);
        }
    }

    /// <summary>Sets the position (see <see cref="Position"/>); only while paused or not yet started.</summary>
    public void SetPosition(int block, long page)
    {
        using (EnterControl())
        {
            if (_started && !_paused)
                throw new InvalidOperationException("the workload position can only be set while paused or before start");
            if (block < 0 || block >= _blocks.Length || page < 0 || page >= _blocks[block].PageCount)
                throw new ArgumentOutOfRangeException(nameof(page), $"position ({block}, {page}) outside the guest's {_blocks.Length} blocks");
            _blockIndex = block;
            _pageIndex = page;
        }
    }

    /// <summary>
    /// Lets the guest run again; pacing restarts from now (no catch-up burst). Returns how long it was paused since
    /// the first <see cref="Pause"/> (zero if it was not paused): the downtime a report of a cut-off migration states.
    /// </summary>
    public TimeSpan Resume()
    {
        using (EnterControl())
        {
            var pausedFor = _paused && _pausedAtTicks != 0 ? Stopwatch.GetElapsedTime(_pausedAtTicks) : TimeSpan.Zero;
            _paused = false;
            _pausedAtTicks = 0;
            ResetPacing();
            Monitor.PulseAll(_gate);
            return pausedFor;
        }
    }

    /// <summary>Stops and joins the worker thread. Idempotent.</summary>
    public void Dispose()
    {
        bool join;
        using (EnterControl())
        {
            join = _started && !_stopping;
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        if (join && Thread.CurrentThread != _thread)
            _thread.Join();
    }

    /// <summary>Takes the gate ahead of the worker: it yields while a control caller is waiting.</summary>
    private ControlScope EnterControl()
    {
        Interlocked.Increment(ref _controlWaiters);
        Monitor.Enter(_gate);
        Interlocked.Decrement(ref _controlWaiters);
        return new ControlScope(_gate);
    }

    private readonly struct ControlScope(object gate) : IDisposable
    {
        public void Dispose() => Monitor.Exit(gate);
    }

    private void ResetPacing()
    {
        _paceStartTicks = Stopwatch.GetTimestamp();
        _pacePages = 0;
        _achievedWindowStartTicks = _paceStartTicks;
        _achievedWindowPages = 0;
    }

    private static readonly TimeSpan AchievedWindow = TimeSpan.FromMilliseconds(100);

    /// <summary>Under _gate: the pace in pages/s, throttled as <see cref="ThrottlePercent"/> says.</summary>
    private double PacePagesPerSecond()
    {
        // In double: a flat-out rate (long.MaxValue / 2) times 100 overflows a long.
        double nominal = _rateBytesPerSecond / (double)RamBlock.PageSize;
        if (_throttlePercent == 0)
            return nominal;
        double basis = _achievedPagesPerSecond > 0 ? Math.Min(nominal, _achievedPagesPerSecond) : nominal;
        return basis * ((100 - _throttlePercent) / 100.0);
    }

    /// <summary>Under _gate, unthrottled: counts the pages of a slice towards the measured achievable rate.</summary>
    private void MeasureAchieved(int pages)
    {
        _achievedWindowPages += pages;
        TimeSpan window = Stopwatch.GetElapsedTime(_achievedWindowStartTicks);
        if (window >= AchievedWindow)
        {
            _achievedPagesPerSecond = _achievedWindowPages / window.TotalSeconds;
            _achievedWindowStartTicks = Stopwatch.GetTimestamp();
            _achievedWindowPages = 0;
        }
    }

    private void Run()
    {
        var spin = new SpinWait();
        while (true)
        {
            while (Volatile.Read(ref _controlWaiters) > 0)
                spin.SpinOnce();
            TimeSpan sleep;
            lock (_gate)
            {
                while (!_stopping && (_paused || _rateBytesPerSecond == 0))
                    Monitor.Wait(_gate);
                if (_stopping)
                    return;
                sleep = DoSlice();
            }
            if (sleep > TimeSpan.Zero)
                Thread.Sleep(sleep);
            else
                Thread.Yield(); // let Pause/Resume callers take the gate
        }
    }

    /// <summary>Under _gate: writes the pages the pace allows now; returns how long to wait before the next slice.</summary>
    private TimeSpan DoSlice()
    {
        double pagesPerSecond = PacePagesPerSecond();
        TimeSpan elapsed = Stopwatch.GetElapsedTime(_paceStartTicks);
        double dueExact = elapsed.TotalSeconds * pagesPerSecond - _pacePages;
        double backlogLimit = Math.Max(1, MaxBacklog.TotalSeconds * pagesPerSecond);
        if (dueExact > backlogLimit)
        {
            // Behind by more than the backlog limit: forget the debt (restart the pace) instead of bursting. The
            // achieved-rate window goes on (a flat-out guest is always behind).
            _paceStartTicks = Stopwatch.GetTimestamp();
            _pacePages = 0;
            elapsed = TimeSpan.Zero;
            dueExact = Math.Min(backlogLimit, MaxSlicePages);
        }
        long due = (long)dueExact;
        if (due <= 0)
        {
            double untilNext = (_pacePages + 1) / pagesPerSecond - elapsed.TotalSeconds;
            // At least 2 ms: Thread.Sleep rounds to whole milliseconds, and a sub-millisecond wait became Sleep(0),
            // a busy loop that burnt a whole core at any rate. Slices then carry a couple of ms worth of pages.
            return TimeSpan.FromSeconds(Math.Clamp(untilNext, 0.002, 0.05));
        }
        int pages = (int)Math.Min(due, MaxSlicePages);
        long sliceStart = Stopwatch.GetTimestamp();
        WritePages(pages);
        _pacePages += pages;
        Interlocked.Add(ref _pagesDirtied, pages);
        if (_throttlePercent == 0)
        {
            MeasureAchieved(pages);
            return TimeSpan.Zero;
        }

        if (_achievedPagesPerSecond > 0)
            return TimeSpan.Zero; // the pace carries the throttle
        // Throttled before any measurement: sleep in proportion to the time the slice ran (what makes a flat-out guest slow down too),
        // collected until it is worth a Thread.Sleep (which rounds to whole milliseconds).
        _throttleDebt += Stopwatch.GetElapsedTime(sliceStart) * (_throttlePercent / (100.0 - _throttlePercent));
        if (_throttleDebt < TimeSpan.FromMilliseconds(2))
            return TimeSpan.Zero;
        var sleep = _throttleDebt;
        _throttleDebt = TimeSpan.Zero;
        return sleep;
    }

    private void WritePages(int pages)
    {
        RamBlock block = _blocks[_blockIndex];
        byte* basePtr = block.BasePointer;
        for (int i = 0; i < pages; i++)
        {
            byte* p = basePtr + (_pageIndex << RamBlock.PageShift);
            *p = (byte)(*p + 1);
            block.Dirty.Mark(_pageIndex); // after the write (Interlocked: a full fence)
            if (++_pageIndex == block.PageCount)
            {
                _pageIndex = 0;
                _blockIndex = (_blockIndex + 1) % _blocks.Length;
                block = _blocks[_blockIndex];
                basePtr = block.BasePointer;
            }
        }
    }
}
