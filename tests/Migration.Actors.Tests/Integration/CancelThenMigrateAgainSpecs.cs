using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Issue 10, point 1: a cancelled guest can always migrate again. One guest is cancelled at many points in a row
/// (fixed delays after the start, which land in setup, connect or precopy with device calls in flight, and each phase
/// before commit: setup, precopy, switchover-ack, stop-copy) and migrated again after each cancel; every following
/// migration completes and verifies, so every device was back in RUNNING when the cancelled migration reported its end.
/// The guest ping-pongs between the two nodes, so both sides' devices are exercised.
/// </summary>
[Collection("two-node cluster")]
public sealed class CancelThenMigrateAgainSpecs(TwoNodeCluster cluster, ITestOutputHelper output) : IClassFixture<TwoNodeCluster>
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(90);

    public static IEnumerable<object[]> CancelPoints() =>
    [
        ["after 0 ms"], ["after 5 ms"], ["after 20 ms"], ["after 50 ms"], ["after 100 ms"], ["after 200 ms"], ["after 400 ms"], ["after 800 ms"],
        ["phase setup"], ["phase precopy"], ["phase switchover-ack"], ["phase stop-copy"],
    ];

    [Fact]
    public async Task A_guest_cancelled_at_many_points_in_a_row_migrates_and_verifies_after_each_cancel()
    {
        // gpu0 has precopy data (it holds precopy when it loads slowly), gpu1 only stop-copy data (it holds stop-copy),
        // net0 is a structured device.
        var spec = new GuestSpec("cancel-again", 32L << 20,
        [
            new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 4 << 20, Seed: 5, DirtyRateBytesPerSecond: 1 << 20),
            new DeviceSpec("gpu1", DeviceKind.Vfio, 1, 4 << 20, 0, Seed: 6),
            new DeviceSpec("net0", DeviceKind.Structured),
        ], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        var (from, to) = (cluster.Source, cluster.Destination);

        foreach (var point in CancelPoints().Select(p => (string)p[0]))
        {
            var (id, watcher) = await cluster.StartAsync(spec.Id, CancelledSettings(point), from, to);
            if (point.StartsWith("after ", StringComparison.Ordinal))
            {
                await Task.Delay(int.Parse(point["after ".Length..^" ms".Length]));
            }
            else if (point != "phase setup")
            {
                var phase = point["phase ".Length..];
                await watcher.WaitForAsync(p => p.Phase == phase, StepTimeout);
            }

            var reply = await from.Node.Ask<object>(new CancelMigration(id), StepTimeout);
            Assert.True(reply is CancelAccepted, $"{point}: cancel answered {reply}");
            var cancelled = await watcher.Finished.WaitAsync(StepTimeout);
            Assert.True(cancelled.Status == "cancelled", $"{point}: the cancelled migration ended {cancelled.Status}: {cancelled.Error}");
            var lastPhase = watcher.Progress.TakeWhile(p => p.Phase != "cancelled").LastOrDefault()?.Phase ?? "setup";
            output.WriteLine($"{point}: cancelled in {lastPhase}");

            // At once, the same guest again, from the same node: it completes and verifies.
            var (_, again) = await cluster.StartAsync(spec.Id, TwoNodeCluster.Settings(), from, to);
            var report = await again.Finished.WaitAsync(StepTimeout);
            Assert.True(report.Status == "completed", $"after the cancel {point} (in {lastPhase}) the next migration ended {report.Status}: {report.Error}");
            Assert.True(report.Verified, $"after the cancel {point}: not verified: {report.Error}");
            Assert.All(report.Devices, d => Assert.True(d.DigestMatch, $"after the cancel {point}: device {d.Id} digest mismatch"));
            Assert.Contains((await TwoNodeCluster.ListAsync(to)).Guests, g => g.VmId == spec.Id && g.State == "running");
            (from, to) = (to, from);
        }
    }

    /// <summary>Settings that keep the cancelled migration in the phase its point names (slow device loads hold it there).</summary>
    private static MigrationSettings CancelledSettings(string point)
    {
        var phase = point.StartsWith("phase ", StringComparison.Ordinal) ? point["phase ".Length..] : "precopy";
        var (slow, iterations) = phase switch
        {
            // Precopy data of gpu0 trickles through 1 MiB of credit at 300 ms per MiB; convergence never comes.
            "setup" or "precopy" => ("slow-load:gpu0=300", 10_000),
            // After one iteration the source waits for the in-flight precopy chunks (4 s per MiB) to be credited.
            "switchover-ack" => ("slow-load:gpu0=4000", 1),
            // After one iteration the guest stops; gpu1's stop-copy state then loads at 600 ms per MiB.
            "stop-copy" => ("slow-load:gpu1=600", 1),
            _ => throw new ArgumentException(point),
        };
        Assert.True(FaultInjection.TryParse(slow, out var fault, out var error), error);
        return TwoNodeCluster.Settings() with
        {
            Inject = [fault],
            DeviceBufferBudget = 1 << 20,
            MaxIterations = iterations,
            DowntimeLimit = iterations == 1 ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromMilliseconds(0.001),
        };
    }
}
