using Migration.Actors.Destination;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// How many chunk buffers the destination fills the node's pool with at prepare: min(budget, the devices' state in
/// whole chunks). The pool keeps what it is filled with, so this is what a node holds for good after such a guest.
/// </summary>
public sealed class IncomingChunkBuffersTests
{
    private const int MiB = 1 << 20;

    public static TheoryData<DeviceSpec[], int, long> States => new()
    {
        // Two 256 MiB devices in 1 MiB chunks: 512 chunks of state, so the 64 MiB budget is what limits the fill.
        { [new("a", DeviceKind.Vfio, 0, 256L * MiB), new("b", DeviceKind.Vfio, 1, 256L * MiB)], MiB, 512L * MiB },
        // A 3 MiB + 1 byte device: its last, shorter chunk counts as one.
        { [new("a", DeviceKind.Vfio, 0, 3L * MiB + 1)], MiB, 4L * MiB },
        // A structured device (a few bytes, StateBytes 0) takes one chunk.
        { [new("net0", DeviceKind.Structured)], MiB, 1L * MiB },
        // 64 MiB chunks: a 1 MiB device still needs a whole one.
        { [new("a", DeviceKind.Vfio, 0, 1L * MiB)], 64 * MiB, 64L * MiB },
    };

    [Theory]
    [MemberData(nameof(States))]
    public void The_fill_counts_each_devices_state_in_whole_chunks(DeviceSpec[] devices, int chunk, long expected) =>
        Assert.Equal(expected, IncomingResources.StateInChunks(new GuestSpec("vm", 4L * MiB, devices), chunk));
}
