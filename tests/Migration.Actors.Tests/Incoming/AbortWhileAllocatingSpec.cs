using Akka.Actor;
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
/// and the guest's RAM stayed mapped, outside the pool's and the node's books, for the life of the process. The same
/// holds for a copy stopped outright while allocating (IncomingGuestAllocation releases the unhandled result).
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

    /// <summary>
    /// A copy stopped from outside while its guest is being allocated (the stop, a system message, overtakes the
    /// allocation's result, which then goes to dead letters): the guest's memory still goes back to the node's pool.
    /// Should the allocation win the race, the copy's resources hold the guest and PostStop releases it the same way.
    /// </summary>
    [Fact]
    public async Task A_copy_stopped_while_allocating_gives_the_memory_back_when_the_allocation_ends()
    {
        var pool = NodeMemoryPool.Get(Sys).Pool;
        var id = Guid.NewGuid();
        Node.Tell(new PrepareIncoming(id, new GuestSpec("vm-stop", GuestBytes, []), MigrationParameters.From(Settings() with { PrefaultDestination = true }), Source.Ref), Source.Ref);
        var copy = await ResolveCopyAsync(id);
        Watch(copy);
        Sys.Stop(copy);
        await ExpectTerminatedAsync(copy, Timeout);

        await AwaitAssertAsync(() => Assert.Equal(GuestBytes, pool.State().HeldBytes), Timeout, TimeSpan.FromMilliseconds(50));
        await AssertNodeStillWorksAsync(copy);
    }

    /// <summary>The node's child for <paramref name="id"/>, once the node has admitted the prepare and created it.</summary>
    private async Task<IActorRef> ResolveCopyAsync(Guid id)
    {
        var selection = Sys.ActorSelection($"/user/{HypervisorNode.Name}/incoming-{id:N}");
        IActorRef? copy = null;
        await AwaitAssertAsync(async () => copy = await selection.ResolveOne(TimeSpan.FromSeconds(1)), Timeout, TimeSpan.FromMilliseconds(5));
        return copy!;
    }
}
