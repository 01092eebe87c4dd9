using Akka.Actor;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Tests.Support;
using Migration.Transport.Flow;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Destination;

/// <summary>
/// A peer that cheats (duplicate index, index after the last chunk, a second last mark) and a device that rejects
/// its state: the owner is told, nothing more is written, and the budget bytes of every dropped chunk are released.
/// </summary>
public sealed class ReorderGateViolationSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    private readonly SavedDeviceState _state = SavedDeviceState.Save(SavedDeviceState.Vfio("tpm-0", 16 * 4096, 4096, seed: 21), chunks: 4);
    private readonly DeviceBufferBudget _budget = new(1 << 20);

    private long Len(int i) => _state.Chunks[i].Length;

    private (IActorRef Gate, RecordingDevice Device, Akka.TestKit.TestProbe Owner, Akka.TestKit.TestProbe Credit) StartGate(TimeSpan writeDelay = default)
    {
        var owner = CreateTestProbe();
        var credit = CreateTestProbe();
        var device = _state.NewDestination(writeDelay);
        var gate = Sys.ActorOf(ReorderGate.Props(1, MigrationId, device, NewPool(), _budget, owner, credit));
        return (gate, device, owner, credit);
    }

    /// <summary>Round trip through the gate's mailbox: everything told to it before has been handled.</summary>
    private GateSnapshot Snapshot(IActorRef gate)
    {
        gate.Tell(GetGateSnapshot.Instance, TestActor);
        return ExpectMsg<GateSnapshot>(Patience);
    }

    private void StopAndAwait(IActorRef gate)
    {
        Watch(gate);
        Sys.Stop(gate);
        ExpectTerminated(gate, Patience);
    }

    [Fact]
    public void ReorderGate_must_report_a_duplicate_of_a_held_chunk_and_release_its_bytes()
    {
        var (gate, device, owner, credit) = StartGate();
        _state.Deliver(gate, _budget, 1, 2, channel: 0);
        _state.Deliver(gate, _budget, 1, 2, channel: 3);

        var v = owner.ExpectMsg<GateViolation>(Patience);
        Assert.Equal(1, v.DeviceIndex);
        Assert.Contains("duplicate chunk index 2", v.Reason);
        Assert.Contains("channel 3", v.Reason);
        Assert.Contains("tpm-0", v.Reason);

        // The violation drops the held chunk at once: its budget bytes are released.
        Assert.Equal(0, Snapshot(gate).HeldBytes);
        Assert.Equal(0, _budget.HeldBytes);

        // After a violation the gate drops whatever comes, releasing its bytes, and writes nothing.
        _state.Deliver(gate, _budget, 1, 0);
        Assert.Equal(0, Snapshot(gate).NextIndex);
        Assert.Equal(0, _budget.HeldBytes);
        Assert.Empty(device.Attempted);
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        owner.ExpectNoMsg(TimeSpan.Zero);
        StopAndAwait(gate);
        Assert.Equal(0, _budget.HeldBytes);
    }

    [Fact]
    public void ReorderGate_must_report_a_duplicate_of_a_loaded_chunk()
    {
        var (gate, device, owner, credit) = StartGate();
        _state.Deliver(gate, _budget, 1, 0);
        Assert.Equal(Len(0), credit.ExpectMsg<DeviceCredit>(Patience).Bytes);
        _state.Deliver(gate, _budget, 1, 0, channel: 2);

        var v = owner.ExpectMsg<GateViolation>(Patience);
        Assert.Contains("duplicate chunk index 0 (next expected 1)", v.Reason);
        Assert.Equal(0, Snapshot(gate).HeldBytes);
        Assert.Equal(0, _budget.HeldBytes);
        Assert.Equal([0L], device.Attempted);
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void ReorderGate_must_report_an_index_after_the_last_chunk_and_release_its_bytes()
    {
        var (gate, device, owner, _) = StartGate();
        _state.Deliver(gate, _budget, 1, 3); // the last chunk, held (0..2 missing)
        SavedDeviceState.DeliverBytes(gate, _budget, 1, 4, last: false, new byte[700], channel: 1);

        var v = owner.ExpectMsg<GateViolation>(Patience);
        Assert.Contains("chunk index 4 after the last chunk 3", v.Reason);
        Assert.Equal(0, Snapshot(gate).HeldBytes);
        Assert.Equal(0, _budget.HeldBytes);
        Assert.Empty(device.Attempted);
        StopAndAwait(gate);
        Assert.Equal(0, _budget.HeldBytes);
    }

    [Fact]
    public void ReorderGate_must_report_a_last_mark_below_a_held_chunk()
    {
        var (gate, _, owner, _) = StartGate();
        _state.Deliver(gate, _budget, 1, 2);
        SavedDeviceState.DeliverBytes(gate, _budget, 1, 1, last: true, _state.Chunks[1]);

        var v = owner.ExpectMsg<GateViolation>(Patience);
        Assert.Contains("early last-chunk mark at index 1", v.Reason);
        Assert.Equal(0, Snapshot(gate).HeldBytes);
        Assert.Equal(0, _budget.HeldBytes);
        StopAndAwait(gate);
        Assert.Equal(0, _budget.HeldBytes);
    }

    [Fact]
    public void ReorderGate_must_report_a_device_that_rejects_its_state_and_write_nothing_after()
    {
        var (gate, device, owner, credit) = StartGate();
        var corrupt = (byte[])_state.Chunks[1].Clone();
        corrupt[corrupt.Length / 2] ^= 0x5A;
        _state.Deliver(gate, _budget, 1, 0);
        SavedDeviceState.DeliverBytes(gate, _budget, 1, 1, last: false, corrupt);
        _state.Deliver(gate, _budget, 1, 2);
        _state.Deliver(gate, _budget, 1, 3);

        var failed = owner.ExpectMsg<DeviceLoadFailed>(Patience);
        Assert.Equal(1, failed.DeviceIndex);
        Assert.Contains("tpm-0", failed.Reason);
        Assert.Contains("chunk 1", failed.Reason);
        Assert.Equal(Len(0), credit.ExpectMsg<DeviceCredit>(Patience).Bytes);
        credit.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        owner.ExpectNoMsg(TimeSpan.Zero);
        Assert.Equal([0L, 1], device.Attempted);
        Assert.Equal(1, device.CompletedWrites);

        // A chunk arriving after the failure is dropped and its bytes released at once.
        var heldBefore = _budget.HeldBytes;
        SavedDeviceState.DeliverBytes(gate, _budget, 1, 4, last: false, new byte[512]);
        Snapshot(gate);
        Assert.Equal(heldBefore, _budget.HeldBytes);
        Assert.Equal([0L, 1], device.Attempted);
    }

    [Fact]
    public void ReorderGate_must_release_the_budget_of_every_chunk_dropped_after_a_device_failure()
    {
        var (gate, _, owner, _) = StartGate();
        var corrupt = (byte[])_state.Chunks[1].Clone();
        corrupt[corrupt.Length / 2] ^= 0x5A;
        _state.Deliver(gate, _budget, 1, 0);
        SavedDeviceState.DeliverBytes(gate, _budget, 1, 1, last: false, corrupt);
        _state.Deliver(gate, _budget, 1, 2);
        _state.Deliver(gate, _budget, 1, 3);
        owner.ExpectMsg<DeviceLoadFailed>(Patience);

        // Chunk 0 was loaded and credited; 1 was rejected, 2 and 3 were dropped from the loader's queue.
        AwaitAssert(() => Assert.Equal(0, _budget.HeldBytes), TimeSpan.FromSeconds(20));
        Assert.Equal(0, Snapshot(gate).HeldBytes);
    }

    [Fact]
    public void ReorderGate_must_release_the_budget_of_chunks_queued_in_its_loader_when_stopped()
    {
        var (gate, device, _, _) = StartGate(writeDelay: TimeSpan.FromMilliseconds(50));
        for (var i = 0; i < 4; i++)
        {
            _state.Deliver(gate, _budget, 1, i);
        }

        AwaitCondition(() => device.Attempted.Count > 0, Patience);
        StopAndAwait(gate);
        AwaitAssert(() => Assert.Equal(0, _budget.HeldBytes), TimeSpan.FromSeconds(20));
    }
}
