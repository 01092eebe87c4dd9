using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Source.Convergence;
using Migration.Actors.Settings;
using Migration.Devices.Ram;

namespace Migration.Actors.Source;

/// <summary>
/// The source's transfer engine, from precopy start to the last End: the pump (<see cref="TransferState"/> decides
/// which job goes to which channel), the job completions and their statistics, the iteration barrier (Sync on every
/// channel) and the End, device credit, the pacing timer, the figures the downtime estimate needs, and the recovery
/// of a lost connection (<see cref="ChannelRecovery"/>). It raises what it observes to the coordinator through
/// <see cref="ISourceTransferEvents"/>, synchronously; the coordinator decides what a phase does with it and tells the
/// engine the stage it is in.
/// Threading: a plain object owned by the MigrationCoordinator, created at precopy start and called only on that
/// actor's thread; its timers are the coordinator's and their messages come back through the coordinator.
/// </summary>
internal sealed class SourceTransfer
{
    private readonly Guid _id;
    private readonly TransferState _state;
    private readonly IReadOnlyList<IActorRef> _channels;
    private readonly MigrationStats _stats;
    private readonly ITimerScheduler _timers;
    private readonly ISourceTransferEvents _events;
    private readonly HashSet<int> _syncedChannels = [];
    private readonly HashSet<int> _endedChannels = [];
    private bool _finalRamHandedOut;
    private bool _endQueued;

    public SourceTransfer(Guid id, TransferState state, ChannelLinks links, IReadOnlyList<IActorRef> channels, MigrationSettings settings,
        MigrationStats stats, ITimerScheduler timers, ILoggingAdapter log, ISourceTransferEvents events)
    {
        _id = id;
        _state = state;
        _channels = channels;
        _stats = stats;
        _timers = timers;
        _events = events;
        Recovery = new ChannelRecovery(id, state, links, channels, settings, timers, log, this, events);
    }

    /// <summary>What the pump does when the RAM of an iteration is handed out, and what it waits for.</summary>
    public TransferStage Stage { get; private set; } = TransferStage.Precopy;

    /// <summary>The iteration being sent (1 = the bulk stage); 0 before the first.</summary>
    public uint Iteration { get; private set; }

    public ChannelRecovery Recovery { get; }

    public RamScanner Scanner => _state.Scanner;

    public BandwidthPacer Pacer => _state.Pacer;

    /// <summary>Latest save estimates per device, as reported by the savers.</summary>
    public DeviceSaveInfo[] Info => _state.Info;

    /// <summary>Every channel has sent End.</summary>
    public bool AllEnded => _endedChannels.Count == _channels.Count;

    /// <summary>Dirty guest RAM not yet sent, in bytes.</summary>
    public long DirtyBytes => Scanner.CountLiveDirtyPages() * RamBlock.PageSize;

    /// <summary>Savers may be asked for chunks (off while waiting for the switchover acknowledgement).</summary>
    public bool DeviceRequestsEnabled
    {
        get => _state.DeviceRequestsEnabled;
        set => _state.DeviceRequestsEnabled = value;
    }

    /// <summary>Starts the next iteration: a fresh dirty bitmap is handed out, devices may be asked again. Returns its number.</summary>
    public uint BeginIteration()
    {
        Iteration++;
        _syncedChannels.Clear();
        Scanner.BeginIteration(Iteration);
        return Iteration;
    }

    /// <summary>After <see cref="BeginIteration"/> (and the digests' look at the fetched bitmap): RAM flows again.</summary>
    public void StartRam()
    {
        _state.RamActive = true;
        _state.ClearDry();
    }

    /// <summary>The switchover began: no precopy chunks are requested; the engine reports when the credit has drained.</summary>
    public void BeginSwitchoverDrain()
    {
        Stage = TransferStage.SwitchoverDrain;
        _state.DeviceRequestsEnabled = false;
    }

    /// <summary>The guest stopped: the final iteration's RAM and every device's remaining state go out, then End.</summary>
    public void BeginFinal()
    {
        Stage = TransferStage.Final;
        _state.DeviceRequestsEnabled = true;
    }

    /// <summary>
    /// Hands out jobs, then what the progress means in the stage: in precopy an iteration's RAM handed out is followed
    /// by Sync on every channel; in the final stage the last RAM and every device's last chunk are followed by End; in
    /// the switchover drain, the drained credit is raised (<see cref="ISourceTransferEvents.DrainedForSwitchover"/>).
    /// </summary>
    public void Pump()
    {
        var t = _state;
        t.Pump();
        SchedulePacing();
        var final = Stage == TransferStage.Final;
        if (t.RamActive && t.Scanner.Exhausted)
        {
            t.RamActive = false;
            if (final)
            {
                _events.Mark("final RAM handed out");
                _finalRamHandedOut = true;
            }
            else
            {
                t.EnqueueOnAllChannels(new SyncJob(Iteration));
            }

            t.Pump();
        }

        if (final && _finalRamHandedOut && !_endQueued && t.AllDevicesSent)
        {
            _endQueued = true;
            _events.Mark("end queued");
            t.EnqueueOnAllChannels(EndJob.Instance);
            t.Pump();
        }

        if (Stage == TransferStage.SwitchoverDrain && t.Credit.InFlightBytes == 0 && t.DeviceQueuesEmpty && t.AllChannelsUp)
        {
            _events.DrainedForSwitchover();
        }
    }

    /// <summary>If the bandwidth limit holds jobs back, pump again when the bucket has refilled (PaceTick).</summary>
    private void SchedulePacing()
    {
        var wait = Pacer.Wait();
        if (wait > TimeSpan.Zero && !_timers.IsTimerActive("pace"))
        {
            _timers.StartSingleTimer("pace", PaceTick.Instance, wait);
        }
    }

    public void OnJobDone(JobDone d)
    {
        _state.OnJobDone(d.Channel);
        _stats.Add(d);
        // The pacer charged the job's payload; the limit is on what the wire carried.
        Pacer.Refund(d.Kind switch
        {
            JobKind.Ram => ((long)(d.NormalPages + d.ZeroPages) * RamBlock.PageSize) - d.WireBytes,
            JobKind.Device => d.DeviceBytes - d.WireBytes,
            _ => 0,
        });
        switch (d.Kind)
        {
            case JobKind.Sync when d.Iteration == Iteration:
                // Counted even when a recovery already counted this channel (as before the engine was split out).
                _syncedChannels.Add(d.Channel);
                if (_syncedChannels.Count == _channels.Count)
                {
                    _events.IterationSynced();
                }

                break;
            case JobKind.End:
                _endedChannels.Add(d.Channel);
                _events.EndSent(d.Channel, AllEnded);
                break;
        }

        Pump();
    }

    /// <summary>
    /// A recovered channel's old connection delivered Sync <paramref name="delivered"/>: if that is the current
    /// iteration's, the channel has finished it; the last channel to finish raises IterationSynced.
    /// </summary>
    internal void SyncedByRecovery(int channel, uint delivered)
    {
        if (delivered < Iteration)
        {
            return;
        }

        if (_syncedChannels.Add(channel) && _syncedChannels.Count == _channels.Count)
        {
            _events.IterationSynced();
        }
    }

    /// <summary>The destination loaded device chunks and returns their credit; a credit that does not fit is a violation.</summary>
    public void OnCredit(DeviceCredit c)
    {
        if (c.MigrationId != _id)
        {
            return;
        }

        if (PeerReplies.CreditProblem(c, _state.Info.Length, _state.Credit.BudgetBytes) is { } problem)
        {
            _events.ProtocolViolation(problem);
            return;
        }

        try
        {
            _state.Ledger.Credited(c.DeviceIndex, c.ChunkIndex, c.Chunks, c.Bytes);
            _state.Credit.Return(c.DeviceIndex, c.Bytes);
        }
        catch (InvalidOperationException e)
        {
            _events.ProtocolViolation(e.Message);
            return;
        }

        _stats.OnCredit(c);
        Pump();
    }

    public void OnChunkReady(ChunkReady r)
    {
        _state.OnChunkReady(r.Chunk, r.Info);
        Pump();
    }

    /// <summary>A saver had nothing now: ask the dry devices again in 20 ms (RepollDevices).</summary>
    public void OnNoChunk(NoChunkNow n)
    {
        _state.OnNoChunk(n.DeviceIndex, n.Info, n.Returned);
        _timers.StartSingleTimer("repoll", RepollDevices.Instance, TimeSpan.FromMilliseconds(20));
        Pump();
    }

    public void OnRepoll()
    {
        _state.ClearDry();
        Pump();
    }

    /// <summary>The destination confirmed an iteration: the send log forgets what it needed to recover it.</summary>
    public void OnIterationReceived(IterationReceived i)
    {
        if (i.MigrationId == _id)
        {
            _state.Log.Confirm(i.Iteration);
        }
    }

    /// <summary>Per device: what is left to read and send, for the downtime estimate.</summary>
    public DeviceLeft[] DevicesLeft(out long totalBytes)
    {
        var devices = new DeviceLeft[Info.Length];
        totalBytes = 0;
        for (var d = 0; d < devices.Length; d++)
        {
            var info = Info[d];
            // A device's stop-copy remainder includes its precopy remainder (both count what is not sent at its current
            // version), so the larger one is what is left to read; read-ahead and queued chunks are read already.
            devices[d] = new DeviceLeft(Math.Max(info.PrecopyRemaining, info.StopCopyRemaining), info.ReadAheadBytes + _state.ReadyBytesOf(d), info.ReadBytesPerMs);
            totalBytes += devices[d].TotalBytes;
        }

        return devices;
    }

    /// <summary>Returns every buffer still held (on abort).</summary>
    public void DropAll() => _state.DropAll();
}
