using Migration.Actors.Source;
using Migration.Devices.Device;
using Migration.Devices.Device.Vfio;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// The saver's abort contract: SaveAborted comes only after the device call in flight ended (also a failed one), the
/// device is then back in RUNNING, and every AbortSave gets exactly one answer.
/// </summary>
public sealed class DeviceSaverAbortSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    private const int ChunkSize = 64 * 1024;

    [Fact]
    public void DeviceSaver_must_answer_SaveAborted_only_after_the_in_flight_StartPrecopy_and_leave_the_device_running()
    {
        var device = new GatedDevice(new SimulatedVfioDevice(new SimulatedVfioOptions { Id = "gpu0", StateSizeBytes = 1 << 20, PrecopyBytes = 1 << 20 })) { GateStart = true };
        var saver = Sys.ActorOf(DeviceSaver.Props(0, device, NewPool(), ChunkSize, readAhead: 2));

        saver.Tell(BeginPrecopySave.Instance, TestActor);
        Assert.True(device.Entered.Wait(Patience), "StartPrecopy never ran");
        saver.Tell(AbortSave.Instance, TestActor);
        // The abort must wait: the device call is in flight (the device is driven by one thread at a time).
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.Equal(DeviceMigrationState.Running, device.State);

        device.Release.Set();
        var aborted = ExpectMsg<SaveAborted>(Patience);
        Assert.Equal(0, aborted.DeviceIndex);
        Assert.Null(aborted.Error);
        Assert.Equal(DeviceMigrationState.Running, device.State);

        // A later AbortSave is answered at once, and the device can start a new save.
        saver.Tell(AbortSave.Instance, TestActor);
        ExpectMsg<SaveAborted>(Patience);
        device.Inner.StartPrecopy();
        Assert.Equal(DeviceMigrationState.PreCopy, device.State);
    }

    [Fact]
    public void DeviceSaver_must_run_the_abort_after_an_in_flight_read_that_fails_and_report_no_save_failure()
    {
        var device = new GatedDevice(new SimulatedVfioDevice(new SimulatedVfioOptions { Id = "gpu0", StateSizeBytes = 1 << 20, PrecopyBytes = 1 << 20 })) { GateRead = true, FailRead = true };
        var saver = Sys.ActorOf(DeviceSaver.Props(0, device, NewPool(), ChunkSize, readAhead: 1));

        saver.Tell(BeginPrecopySave.Instance, TestActor);
        Assert.True(device.Entered.Wait(Patience), "no read ran");
        Assert.Equal(DeviceMigrationState.PreCopy, device.State);
        saver.Tell(AbortSave.Instance, TestActor);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        device.Release.Set(); // the read fails
        var aborted = ExpectMsg<SaveAborted>(Patience);
        Assert.Null(aborted.Error);
        Assert.Equal(DeviceMigrationState.Running, device.State);
        ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // no DeviceSaveFailed: the migration is already aborting
    }

    /// <summary>A device whose StartPrecopy or ReadPrecopy blocks until released (and may then fail), to hold a call in flight.</summary>
    private sealed class GatedDevice(IMigratableDevice inner) : IMigratableDevice
    {
        public IMigratableDevice Inner => inner;
        public bool GateStart { get; init; }
        public bool GateRead { get; init; }
        public bool FailRead { get; init; }
        public ManualResetEventSlim Entered { get; } = new();
        public ManualResetEventSlim Release { get; } = new();

        public DeviceIdentity Identity => inner.Identity;
        public DeviceMigrationState State => inner.State;
        public long StateSizeBytes => inner.StateSizeBytes;
        public long StopCopyRemainingBytes => inner.StopCopyRemainingBytes;

        public void StartPrecopy()
        {
            Hold(GateStart);
            inner.StartPrecopy();
        }

        public int ReadPrecopy(Span<byte> destination)
        {
            Hold(GateRead);
            if (FailRead)
            {
                throw new IOException("simulated device read error");
            }

            return inner.ReadPrecopy(destination);
        }

        private void Hold(bool gated)
        {
            if (gated)
            {
                Entered.Set();
                Release.Wait(TimeSpan.FromSeconds(30));
            }
        }

        public PrecopyInfo QueryPrecopy() => inner.QueryPrecopy();
        public void StartStopCopy() => inner.StartStopCopy();
        public int ReadStopCopy(Span<byte> destination) => inner.ReadStopCopy(destination);
        public void FinishStopCopy() => inner.FinishStopCopy();
        public void AbortToRunning() => inner.AbortToRunning();
        public void StartResuming() => inner.StartResuming();
        public void WriteChunk(long index, ReadOnlySpan<byte> data) => inner.WriteChunk(index, data);
        public void FinishResuming() => inner.FinishResuming();
        public void Resume() => inner.Resume();
        public void Reset() => inner.Reset();
        public UInt128 ComputeDigest() => inner.ComputeDigest();
    }
}
