using System.Diagnostics;
using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Host.Bench;

/// <summary>
/// `bench --destination-memory fresh|warm`: how the destination node's memory for the guest starts.
/// fresh (default): the destination's memory pool is off, so the guest lands in new anonymous memory that the kernel
/// clears on first touch, as QEMU's "fresh anonymous destination". warm: the destination node populates its pool at
/// start (migration.memory-pool.populate = guest RAM + 64 MiB per warm-up round of the warm-up guest, MADV_POPULATE_WRITE) and the bench
/// waits until it is ready, so the guest lands in pre-touched memory by the node's own mechanism, as QEMU's
/// pre-touched destination. Populating is not timed (it happens before the migration starts).
/// </summary>
public sealed record DestinationMemory(IReadOnlyDictionary<string, string> NodeConfig, long ReadyBytes)
{
    /// <summary>Each warm-up round trip takes a 64 MiB range from the pool (what it returns is quarantined for 10 s).</summary>
    private const long WarmupGuestBytes = BenchRunner.WarmupRounds * (64L << 20);

    public static DestinationMemory For(bool warm, long guestRamBytes) => warm
        ? new(new Dictionary<string, string> { ["memory-pool.populate"] = $"{guestRamBytes + WarmupGuestBytes}B" }, guestRamBytes + WarmupGuestBytes)
        : new(new Dictionary<string, string> { ["memory-pool.enabled"] = "off" }, 0);

    /// <summary>
    /// The destination's pool now, in one ListGuests: bytes held (resident) and bytes handed to incoming guests so far
    /// (both 0 if it reports no pool).
    /// </summary>
    public static async Task<(long Held, long Reused)> PoolAsync(IActorRef destinationNode, CancellationToken ct) =>
        (await destinationNode.Ask<GuestList>(ListGuests.Instance, TimeSpan.FromSeconds(30), ct)).Pool is { } p ? (p.HeldBytes, p.ReusedBytes) : (0, 0);

    /// <summary>Waits until the destination's pool holds <see cref="ReadyBytes"/> ready (no-op for fresh).</summary>
    public async Task WaitReadyAsync(IActorRef destinationNode, TextWriter log, CancellationToken ct)
    {
        if (ReadyBytes == 0)
        {
            return;
        }

        var started = Stopwatch.StartNew();
        while (started.Elapsed < TimeSpan.FromMinutes(5))
        {
            var list = await destinationNode.Ask<GuestList>(ListGuests.Instance, TimeSpan.FromSeconds(10), ct);
            if (list.Pool is { } pool && pool.ReadyBytes >= ReadyBytes)
            {
                await log.WriteLineAsync($"  destination memory pool populated: {ByteSize.Format(pool.ReadyBytes)} ready after {started.Elapsed.TotalSeconds:0.0} s (not timed)");
                return;
            }

            await Task.Delay(200, ct);
        }

        throw new TimeoutException($"the destination's memory pool did not populate {ByteSize.Format(ReadyBytes)} within 5 minutes");
    }
}
