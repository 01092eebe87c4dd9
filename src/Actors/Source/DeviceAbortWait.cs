using Akka.Event;
using Migration.Actors.Infrastructure;
using Migration.Devices.Device;

namespace Migration.Actors.Source;

/// <summary>
/// The end of an aborted (cancelled or failed) source migration (docs/architecture.md, "Aborting: the devices go back
/// to running first"): which device savers have confirmed that their device is back in RUNNING (SaveAborted), the
/// errors they reported, and the end status and reason the report will carry. Pure bookkeeping; the coordinator's
/// AwaitingDeviceAborts state feeds it. Owned by the MigrationCoordinator; used only on its thread, except
/// <see cref="ReturnOnceDrained"/>, which copies what it needs before it leaves that thread.
/// </summary>
internal sealed class DeviceAbortWait
{
    private readonly HashSet<int> _backToRunning = [];
    private readonly List<string> _errors = [];

    /// <summary>"cancelled" or "failed" (set by <see cref="Begin"/>).</summary>
    public string Status { get; private set; } = "";

    /// <summary>The guest's downtime when the abort began (it was paused until then): the report's downtime.</summary>
    public double DowntimeMs { get; private set; }

    private string _reason = "";

    /// <summary>The reason of the end, followed by every device error reported while waiting.</summary>
    public string ReasonWithDeviceErrors => _errors.Count == 0 ? _reason : $"{_reason}; {string.Join("; ", _errors)}";

    public void Begin(string status, string reason, double downtimeMs)
    {
        Status = status;
        _reason = reason;
        DowntimeMs = downtimeMs;
    }

    /// <summary>
    /// Device <paramref name="device"/>'s saver confirmed its AbortSave. Returns false for an index outside
    /// 0..<paramref name="savers"/>-1 or a repeat (a confirmation of an earlier AbortSave counts once).
    /// </summary>
    public bool Confirm(int device, int savers, string? error)
    {
        if (device < 0 || device >= savers || !_backToRunning.Add(device))
        {
            return false;
        }

        if (error is not null)
        {
            _errors.Add(error);
        }

        return true;
    }

    public int Confirmed => _backToRunning.Count;

    /// <summary>The devices that did not confirm within <paramref name="timeout"/>: records and returns the error that names them.</summary>
    public string TimedOut(IReadOnlyList<IMigratableDevice> devices, int savers, TimeSpan timeout)
    {
        var missing = Enumerable.Range(0, savers).Where(i => !_backToRunning.Contains(i)).Select(i => devices[i].Identity.Id);
        var error = $"device(s) {string.Join(", ", missing)} did not confirm their return to running within {timeout.TotalSeconds:0.#} s " +
                    "(device-abort-timeout); a new migration of this guest may fail until they do";
        _errors.Add(error);
        return error;
    }

    /// <summary>
    /// Safety net for a coordinator stopped before its savers confirmed (an internal error, Kill, or the node's
    /// ActorSystem terminating): once the worker pool has drained (no device call runs any more), the devices whose
    /// saver did not confirm go back to running. Runs on the pool's last thread, after the coordinator has stopped;
    /// touches only the devices (the list of them is taken now, on the coordinator's thread).
    /// </summary>
    public void ReturnOnceDrained(WorkerPool pool, IReadOnlyList<IMigratableDevice> all, ILoggingAdapter log, Guid id)
    {
        var devices = all.Where((_, i) => !_backToRunning.Contains(i)).ToArray();
        pool.Drained.ContinueWith(_ =>
        {
            foreach (var d in devices)
            {
                try
                {
                    DeviceRecovery.ReturnToRunning(d);
                }
                catch (Exception e)
                {
                    log.Error("migration {0}: device {1} did not return to running after the coordinator stopped: {2}", id, d.Identity.Id, e.Message);
                }
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
