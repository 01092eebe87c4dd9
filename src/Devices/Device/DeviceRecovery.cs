namespace Migration.Devices.Device;

/// <summary>
/// Puts a source device back to Running after an aborted or interrupted save, whatever state the save left it in:
/// PreCopy, StopCopy or Stop -> Running by <see cref="IMigratableDevice.AbortToRunning"/> (the device keeps its state);
/// Error or Resuming (not a source state; a device that failed) -> Running by <see cref="IMigratableDevice.Reset"/>;
/// Running stays as it is. Idempotent.
/// Threading: the caller must be the device's only driver at the time of the call (no save call of the device in
/// flight), as <see cref="IMigratableDevice"/> requires.
/// </summary>
public static class DeviceRecovery
{
    /// <summary>Returns the state the device was in before (Running if nothing had to be done).</summary>
    public static DeviceMigrationState ReturnToRunning(IMigratableDevice device)
    {
        var state = device.State;
        try
        {
            switch (state)
            {
                case DeviceMigrationState.PreCopy or DeviceMigrationState.StopCopy or DeviceMigrationState.Stop:
                    device.AbortToRunning();
                    break;
                case DeviceMigrationState.Error or DeviceMigrationState.Resuming:
                    device.Reset();
                    break;
            }
        }
        catch (DeviceStateException) when (device.State == DeviceMigrationState.Running)
        {
            // Another recovery got there first (the device is locked per call): the goal is reached.
        }

        return state;
    }
}
