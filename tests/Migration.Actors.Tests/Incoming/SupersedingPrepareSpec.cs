using Migration.Actors.Drain;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// A PrepareIncoming that supersedes an incoming copy of the same guest from the same source (the source cancelled and
/// started again before its abort arrived) while that copy's guest is still being allocated. The allocation cannot be
/// cancelled, so the copy's RAM stays mapped until it finishes: the node used to forget the copy at once, count its
/// memory as free and admit the new migration beside it, overcommitting its capacity by one guest. Now the copy counts
/// until its memory is back, and the new prepare waits for it.
/// </summary>
public sealed class SupersedingPrepareSpec(ITestOutputHelper output) : IncomingSpecBase(output)
{
    private const long AllocatingBytes = 256L << 20;

    /// <summary>Prefaulted, so that allocating takes tens to hundreds of ms and the next prepare finds it still allocating.</summary>
    private static MigrationSettings Prefaulted() => Settings() with { PrefaultDestination = true };

    [Fact]
    public async Task The_superseding_prepare_waits_until_the_superseded_copy_gave_its_memory_back()
    {
        var pool = NodeMemoryPool.Get(Sys).Pool;
        Assert.Equal(0, pool.State().HeldBytes);
        var first = Guid.NewGuid();
        var second = Guid.NewGuid();
        Node.Tell(new PrepareIncoming(first, new GuestSpec("vm-a", AllocatingBytes, []), MigrationParameters.From(Prefaulted()), Source.Ref), Source.Ref);
        Node.Tell(new PrepareIncoming(second, Spec("vm-a"), MigrationParameters.From(Settings()), Source.Ref), Source.Ref);

        // Right behind the second prepare: the first copy's RAM still counts, and the second is not admitted yet.
        var asker = CreateTestProbe();
        Node.Tell(GetCapacity.Instance, asker.Ref);
        var during = await asker.ExpectMsgAsync<NodeCapacity>(Timeout);
        Assert.Equal(AllocatingBytes, during.UsedBytes);
        Assert.Empty(during.Incoming);

        var ack = await Source.ExpectMsgAsync<PrepareAck>(Timeout); // the first copy never answers: it was aborted while allocating
        Assert.Equal(second, ack.MigrationId);
        Assert.Equal(AllocatingBytes, pool.State().HeldBytes); // its memory was back before the second was admitted

        Node.Tell(GetCapacity.Instance, asker.Ref);
        var after = await asker.ExpectMsgAsync<NodeCapacity>(Timeout);
        Assert.Equal(RamBytes, after.UsedBytes);
        Assert.Equal(second, Assert.Single(after.Incoming));
        await ConnectAsync(ack, 0);
    }

    [Fact]
    public async Task A_waiting_prepare_superseded_in_turn_is_refused_and_the_newest_is_prepared()
    {
        var first = Guid.NewGuid();
        var second = Guid.NewGuid();
        var third = Guid.NewGuid();
        Node.Tell(new PrepareIncoming(first, new GuestSpec("vm-a", AllocatingBytes, []), MigrationParameters.From(Prefaulted()), Source.Ref), Source.Ref);
        Node.Tell(new PrepareIncoming(second, Spec("vm-a"), MigrationParameters.From(Settings()), Source.Ref), Source.Ref);
        Node.Tell(new PrepareIncoming(third, Spec("vm-a"), MigrationParameters.From(Settings()), Source.Ref), Source.Ref);

        var refused = await Source.ExpectMsgAsync<PrepareRefused>(Timeout);
        Assert.Equal(second, refused.MigrationId);
        Assert.Contains($"superseded by migration {third}", refused.Reason);
        var ack = await Source.ExpectMsgAsync<PrepareAck>(Timeout);
        Assert.Equal(third, ack.MigrationId);
        await Source.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task A_waiting_prepare_aborted_by_its_source_is_never_prepared()
    {
        var pool = NodeMemoryPool.Get(Sys).Pool;
        var first = Guid.NewGuid();
        var second = Guid.NewGuid();
        Node.Tell(new PrepareIncoming(first, new GuestSpec("vm-a", AllocatingBytes, []), MigrationParameters.From(Prefaulted()), Source.Ref), Source.Ref);
        Node.Tell(new PrepareIncoming(second, Spec("vm-a"), MigrationParameters.From(Settings()), Source.Ref), Source.Ref);
        Node.Tell(new AbortIncoming(second, "the source gave up waiting"), Source.Ref);

        await AwaitAssertAsync(() => Assert.Equal(AllocatingBytes, pool.State().HeldBytes), Timeout, TimeSpan.FromMilliseconds(50));
        await Source.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500)); // neither copy answers: both were aborted
        var asker = CreateTestProbe();
        Node.Tell(GetCapacity.Instance, asker.Ref);
        var after = await asker.ExpectMsgAsync<NodeCapacity>(Timeout);
        Assert.Equal(0, after.UsedBytes);
        Assert.Empty(after.Incoming);
    }
}
