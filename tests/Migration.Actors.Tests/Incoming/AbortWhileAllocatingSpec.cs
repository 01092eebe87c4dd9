using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// An AbortIncoming that reaches the incoming migration while its guest is still being allocated (off the actor's
/// thread): the allocation cannot be cancelled, so its memory must still come back (to the node's pool) when it
/// finishes. Before the DiscardingAllocation state the actor stopped at once, the late Allocated went to dead letters,
/// and the guest's RAM stayed mapped, outside the pool's and the node's books, for the life of the process.
/// </summary>
public sealed class AbortWhileAllocatingSpec(ITestOutputHelper output) : IncomingSpecBase(output)
{
    private const long GuestBytes = 256L << 20;

    [Fact]
    public async Task An_abort_during_allocation_returns_the_allocated_memory_to_the_pool()
    {
        var pool = NodeMemoryPool.Get(Sys).Pool;
        Assert.Equal(0, pool.State().HeldBytes);
        var id = Guid.NewGuid();
        // Prefaulted: the allocation faults in 256 MiB (tens to hundreds of ms), so the abort, sent right after the
        // prepare, arrives while the guest is being allocated; the missing PrepareAck below proves that it did.
        var settings = Settings() with { PrefaultDestination = true };
        var spec = new GuestSpec("vm-abort", GuestBytes, []);
        Node.Tell(new PrepareIncoming(id, spec, MigrationParameters.From(settings), Source.Ref), Source.Ref);
        Node.Tell(new AbortIncoming(id, "the source gave up"), Source.Ref);

        await AwaitAssertAsync(() => Assert.Equal(GuestBytes, pool.State().HeldBytes), Timeout, TimeSpan.FromMilliseconds(50));
        // No answer to the prepare: the abort came before the guest was allocated, so it was never offered to the source.
        await Source.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));

        // The node forgot the migration: a prepare with a new id for the same guest is admitted (the returned memory is
        // quarantined for 10 s, so this guest is built over fresh memory).
        var second = Guid.NewGuid();
        Node.Tell(new PrepareIncoming(second, spec, MigrationParameters.From(Settings()), Source.Ref), Source.Ref);
        var ack = await Source.ExpectMsgAsync<PrepareAck>(Timeout);
        Assert.Equal(second, ack.MigrationId);
    }
}
