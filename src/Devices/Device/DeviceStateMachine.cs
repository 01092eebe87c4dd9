namespace Migration.Devices.Device;

/// <summary>
/// The VFIO-v2-style migration state of one device, shared by every <see cref="IMigratableDevice"/>
/// implementation so they enforce the same transitions and word errors the same way.
/// Threading: mutated only by the device's driving thread; <see cref="State"/> may be read from any thread.
/// Illegal transitions and wrong-state calls throw without changing state (the caller erred, the device is
/// fine); <see cref="Fail"/> is for corruption detected by the device and moves it to Error, which only
/// <see cref="ResetToRunning"/> leaves.
/// </summary>
public sealed class DeviceStateMachine
{
    private readonly string _deviceId;
    private int _state = (int)DeviceMigrationState.Running;

    public DeviceStateMachine(string deviceId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deviceId);
        _deviceId = deviceId;
    }

    public DeviceMigrationState State => (DeviceMigrationState)Volatile.Read(ref _state);

    /// <summary>The message of the failure that moved the device to Error; null unless in Error.</summary>
    public string? FirstError { get; private set; }

    /// <summary>
    /// Moves to <paramref name="to"/> if the current state is one of <paramref name="from"/>, else throws
    /// "device gpu0: illegal transition Running -> Resuming".
    /// </summary>
    public DeviceMigrationState Move(DeviceMigrationState to, params ReadOnlySpan<DeviceMigrationState> from)
    {
        DeviceMigrationState current = State;
        ThrowIfError(current, $"transition to {to}");
        if (!from.Contains(current))
            throw new DeviceStateException($"device {_deviceId}: illegal transition {current} -> {to}");
        Volatile.Write(ref _state, (int)to);
        return current;
    }

    /// <summary>Throws unless the device is in one of <paramref name="allowed"/> ("device gpu0: ReadPrecopy in state Running; allowed in PreCopy").</summary>
    public void Require(string operation, params ReadOnlySpan<DeviceMigrationState> allowed)
    {
        DeviceMigrationState current = State;
        ThrowIfError(current, operation);
        if (!allowed.Contains(current))
            throw new DeviceStateException($"device {_deviceId}: {operation} in state {current}; allowed in {string.Join(" | ", allowed.ToArray())}");
    }

    /// <summary>Records a corruption, moves to Error and returns the exception to throw ("device gpu0: " + message).</summary>
    public DeviceStateException Fail(string message)
    {
        string full = $"device {_deviceId}: {message}";
        if (State != DeviceMigrationState.Error)
            FirstError = full;
        Volatile.Write(ref _state, (int)DeviceMigrationState.Error);
        return new DeviceStateException(full);
    }

    /// <summary>Any state (including Error) -> Running; clears the recorded error.</summary>
    public void ResetToRunning()
    {
        FirstError = null;
        Volatile.Write(ref _state, (int)DeviceMigrationState.Running);
    }

    private void ThrowIfError(DeviceMigrationState current, string operation)
    {
        if (current == DeviceMigrationState.Error)
            throw new DeviceStateException($"device {_deviceId}: {operation} refused: device is in Error ({FirstError}); only Reset leaves it");
    }
}
