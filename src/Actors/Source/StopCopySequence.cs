using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

/// <summary>
/// The stop-copy and verify sequence of the source: when the guest was paused, what the final state collected (each
/// device's DeviceSaved and digest, the RAM digests of the paused guest), when SourceDigests may go out (after End on
/// every channel, every device saved and the RAM digests), and the stop phase's debug timeline (<see cref="Mark"/>).
/// The coordinator's StopCopy state feeds it and enters Verifying once <see cref="TryDigests"/> returns them.
/// Threading: owned by the MigrationCoordinator and called only on its thread.
/// </summary>
internal sealed class StopCopySequence
{
    private readonly SourceRun _run;
    private string[] _deviceDigests = [];

    public StopCopySequence(SourceRun run) => _run = run;

    /// <summary>When the guest was paused for stop-copy, in ms on the run's clock; -1 while it runs.</summary>
    public double StoppedAtMs { get; private set; } = -1;

    /// <summary>The guest has been paused for stop-copy (it runs here again only after a take-back).</summary>
    public bool Stopped => StoppedAtMs >= 0;

    /// <summary>How long the guest has been paused (0 before the stop): the report's downtime, also on failure.</summary>
    public double PausedMs => Stopped ? _run.Clock.Elapsed.TotalMilliseconds - StoppedAtMs : 0;

    /// <summary>Each device's final save (null until its saver sent DeviceSaved), by device index: the report's.</summary>
    public DeviceSaved?[] Saved { get; private set; } = [];

    /// <summary>The paused guest's RAM digests per segment (null until computed): the report's.</summary>
    public string[]? RamDigests { get; private set; }

    /// <summary>Precopy starts: one slot per device.</summary>
    public void Begin(int devices)
    {
        Saved = new DeviceSaved?[devices];
        _deviceDigests = new string[devices];
    }

    /// <summary>Pauses the guest now and notes when.</summary>
    public void StopGuest()
    {
        _run.Guest.Workload.Pause();
        StoppedAtMs = _run.Clock.Elapsed.TotalMilliseconds;
    }

    public void OnDeviceSaved(DeviceSaved s)
    {
        Saved[s.DeviceIndex] = s;
        Mark($"device {s.DeviceIndex} saved");
        _deviceDigests[s.DeviceIndex] = s.Digest;
    }

    /// <summary>The RAM digests of the paused guest are computed.</summary>
    public void OnRamDigests(string[] digests) => RamDigests = digests;

    /// <summary>
    /// The digests for the destination's verification, once End went out on every channel, every device is saved and
    /// the RAM digests are computed; null before. Called only in StopCopy (its RamDigestsReady, and the End JobDones
    /// that come only after the stop); once the digests are sent the state is Verifying, which ignores both.
    /// </summary>
    public SourceDigests? TryDigests()
    {
        if (!_run.Transfer!.AllEnded || RamDigests is null || Saved.Any(s => s is null))
        {
            return null;
        }

        Mark("digests sent");
        var cpu = _run.Guest.Workload.Position;
        return new SourceDigests(_run.Id, RamDigests, _deviceDigests, Saved.Select(s => s!.Chunks).ToArray(), cpu.Block, cpu.Page);
    }

    /// <summary>Debug timeline of the stop-copy phase (akka.loglevel = DEBUG shows it).</summary>
    public void Mark(string what)
    {
        if (_run.Log.IsDebugEnabled)
        {
            _run.Log.Debug($"migration {_run.Id}: T+{_run.Clock.Elapsed.TotalMilliseconds - StoppedAtMs:0.0} ms after stop: {what}");
        }
    }
}
