using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Devices.Device;

namespace Migration.Actors.Source;

// The end of an aborted (cancelled or failed) migration: the devices go back to running before the node hears of the end.
public sealed partial class MigrationCoordinator
{
    private readonly HashSet<int> _devicesBackToRunning = [];
    private readonly List<string> _deviceAbortErrors = [];
    private string _abortStatus = "";
    private string _abortReason = "";
    private double _abortDowntimeMs;

    /// <summary>
    /// Contract: an aborted migration reports its end (MigrationEnded, which frees the guest for a new migration on the
    /// node) only after every device saver answered SaveAborted, that is after each device's call in flight ended and
    /// its device is back in RUNNING, or after migration.device-abort-timeout, in which case the report names the
    /// devices that did not confirm. The savers are stopped only then (Finish): a Stop would overtake the AbortSave.
    /// AbortSave was already sent to every saver (<see cref="Abort"/>).
    /// </summary>
    private void EndAfterDeviceAborts(string status, string reason)
    {
        _abortStatus = status;
        _abortReason = reason;
        // The guest was paused until Abort resumed it (just before this): that is the downtime it experienced.
        _abortDowntimeMs = PausedMs;
        if (_savers.Length == 0)
        {
            Finish(status, reason, _abortDowntimeMs);
            return;
        }

        Timers.CancelAll();
        Timers.StartSingleTimer("device-abort", DeviceAbortTimedOut.Instance, _settings.DeviceAbortTimeout);
        Become(AwaitingDeviceAborts);
    }

    private void AwaitingDeviceAborts()
    {
        Receive<SaveAborted>(a =>
        {
            if (a.DeviceIndex < 0 || a.DeviceIndex >= _savers.Length || !_devicesBackToRunning.Add(a.DeviceIndex))
            {
                return; // a confirmation of an earlier AbortSave (OnChannelFailed) counts once
            }

            if (a.Error is not null)
            {
                _log.Error("migration {0} of {1}: {2}", _id, _guest.Id, a.Error);
                _deviceAbortErrors.Add(a.Error);
            }

            if (_devicesBackToRunning.Count == _savers.Length)
            {
                Finish(_abortStatus, AbortReasonWithDeviceErrors(), _abortDowntimeMs);
            }
        });
        Receive<DeviceAbortTimedOut>(_ =>
        {
            var missing = Enumerable.Range(0, _savers.Length).Where(i => !_devicesBackToRunning.Contains(i)).Select(i => _guest.Devices[i].Identity.Id);
            var error = $"device(s) {string.Join(", ", missing)} did not confirm their return to running within {_settings.DeviceAbortTimeout.TotalSeconds:0.#} s " +
                        "(device-abort-timeout); a new migration of this guest may fail until they do";
            _log.Error("migration {0} of {1}: {2}", _id, _guest.Id, error);
            _deviceAbortErrors.Add(error);
            Finish(_abortStatus, AbortReasonWithDeviceErrors(), _abortDowntimeMs);
        });
        Receive<CancelMigration>(_ => Sender.Tell(new CommandFailed($"migration {_id} is ending ({_abortStatus}); its devices are returning to running", "ended")));
        Receive<SubscribeMigration>(OnSubscribe);
        Receive<ChunkReady>(r => r.Chunk.ReturnBuffer());
        ReceiveAny(_ => { });
    }

    private string AbortReasonWithDeviceErrors() =>
        _deviceAbortErrors.Count == 0 ? _abortReason : $"{_abortReason}; {string.Join("; ", _deviceAbortErrors)}";

    /// <summary>
    /// Safety net for a coordinator stopped before its savers confirmed (an internal error, Kill, or the node's
    /// ActorSystem terminating): once the worker pool has drained (no device call runs any more), the devices whose
    /// saver did not confirm go back to running. Not after the hand-over: the guest then belongs to the destination.
    /// Runs on the pool's last thread, after this actor has stopped; touches only the devices, not actor state.
    /// </summary>
    private void ReturnDevicesOnceDrained()
    {
        if (_pool is null || _commitSent)
        {
            return;
        }

        var devices = _guest.Devices.Where((_, i) => !_devicesBackToRunning.Contains(i)).ToArray();
        var log = _log;
        var id = _id;
        _pool.Drained.ContinueWith(_ =>
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

    private sealed record DeviceAbortTimedOut : INoSerializationVerificationNeeded
    {
        public static readonly DeviceAbortTimedOut Instance = new();
    }
}
