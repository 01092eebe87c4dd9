using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>
/// The node's books of its incoming migrations when a prepare supersedes a copy (<see cref="IncomingMigrations.DeferBehindSuperseded"/>):
/// what the discarding copy still counts, and which deferred prepares each end of a copy releases.
/// </summary>
public sealed class IncomingMigrationsTests : Akka.TestKit.Xunit2.TestKit
{
    private const long Ram = 64L << 20;

    private PrepareIncoming Prepare(string vmId, IActorRef source, long ram = Ram) =>
        new(Guid.NewGuid(), new GuestSpec(vmId, ram, []), MigrationParameters.From(new MigrationSettings()), source);

    private (IncomingMigrations Books, Guid Id, IActorRef Copy) WithCopy(string vmId, IActorRef source, long ram = Ram)
    {
        var books = new IncomingMigrations();
        var copy = CreateTestProbe().Ref;
        var id = Guid.NewGuid();
        books.Add(id, new IncomingEntry(vmId, copy, ram, source));
        return (books, id, copy);
    }

    [Fact]
    public void A_superseded_copy_keeps_counting_until_it_ends_and_then_releases_the_prepare()
    {
        var source = CreateTestProbe().Ref;
        var (books, id, copy) = WithCopy("vm-a", source);
        var next = Prepare("vm-a", source, ram: 8L << 20);

        Assert.True(books.DeferBehindSuperseded(next, TestActor, NoLogger.Instance));
        Assert.Equal(Ram, books.RamBytes()); // the copy's memory is not back yet
        Assert.True(books.Receives("vm-a")); // it may yet run here (a claim started): the id stays taken
        Assert.Empty(books.Ids());
        Assert.True(books.Contains(id) && books.Contains(next.MigrationId));
        Assert.Empty(books.TakeReleased());

        books.End(id); // it reported "discarded": its memory comes back only when its actor stops
        Assert.Equal(Ram, books.RamBytes());
        Assert.Empty(books.TakeReleased());
        Assert.Equal(id, Assert.Single(books.ForgetDiscardedBy(copy)));
        var released = Assert.Single(books.TakeReleased());
        Assert.Same(next, released.Prepare);
        Assert.Equal(TestActor, released.Sender);
        Assert.Equal(0, books.RamBytes());
        Assert.False(books.Contains(next.MigrationId));
        Assert.Empty(books.TakeReleased()); // taken once
    }

    [Fact]
    public void A_terminated_discarding_copy_is_forgotten_and_releases_the_prepare()
    {
        var source = CreateTestProbe().Ref;
        var (books, id, copy) = WithCopy("vm-a", source);
        Assert.True(books.DeferBehindSuperseded(Prepare("vm-a", source), TestActor, NoLogger.Instance));

        Assert.Empty(books.RunBy(copy)); // not reported as a failed incoming migration
        books.ForgetDiscardedBy(copy);
        Assert.Single(books.TakeReleased());
        Assert.False(books.Contains(id));
        Assert.Equal(0, books.RamBytes());
    }

    [Fact]
    public void A_prepare_waiting_behind_a_copy_is_refused_when_a_newer_one_supersedes_it()
    {
        var source = CreateTestProbe().Ref;
        var (books, id, _) = WithCopy("vm-a", source);
        var older = Prepare("vm-a", source);
        var newer = Prepare("vm-a", source);
        var olderAsker = CreateTestProbe();

        Assert.True(books.DeferBehindSuperseded(older, olderAsker.Ref, NoLogger.Instance));
        Assert.True(books.DeferBehindSuperseded(newer, TestActor, NoLogger.Instance));

        var refused = olderAsker.ExpectMsg<PrepareRefused>();
        Assert.Equal(older.MigrationId, refused.MigrationId);
        Assert.Contains($"superseded by migration {newer.MigrationId}", refused.Reason);
        books.End(id, guestRunsHere: true); // the copy's claim had started and it resumed here: its RAM is the guest's now
        Assert.Equal(0, books.RamBytes());
        Assert.Same(newer, Assert.Single(books.TakeReleased()).Prepare);
    }

    [Fact]
    public void A_waiting_prepare_can_be_taken_back_by_an_abort_and_is_then_never_released()
    {
        var source = CreateTestProbe().Ref;
        var (books, _, copy) = WithCopy("vm-a", source);
        var waiting = Prepare("vm-a", source);
        Assert.True(books.DeferBehindSuperseded(waiting, TestActor, NoLogger.Instance));
        Assert.Equal(source, books.DeferredSource(waiting.MigrationId));

        Assert.True(books.CancelDeferred(waiting.MigrationId));
        Assert.False(books.CancelDeferred(waiting.MigrationId));
        Assert.Null(books.DeferredSource(waiting.MigrationId));
        books.ForgetDiscardedBy(copy);
        Assert.Empty(books.TakeReleased());
    }

    [Fact]
    public void Copies_of_other_guests_or_from_other_sources_are_neither_aborted_nor_waited_for()
    {
        var source = CreateTestProbe().Ref;
        var otherNode = new RootActorPath(new Address("akka.tcp", "mig", "10.0.0.9", 4053)) / "user" / "node";
        // A ref whose address is another node's: only its address matters here.
        var remote = new EmptyLocalActorRef(((ExtendedActorSystem)Sys).Provider, otherNode, Sys.EventStream);
        var (books, _, _) = WithCopy("vm-a", remote);
        books.Add(Guid.NewGuid(), new IncomingEntry("vm-b", CreateTestProbe().Ref, Ram, source));

        Assert.False(books.DeferBehindSuperseded(Prepare("vm-a", source), TestActor, NoLogger.Instance));
        Assert.True(books.Receives("vm-a")); // the other node's copy is untouched (the node refuses "already exists")
        Assert.True(books.Receives("vm-b"));
        Assert.Equal(2 * Ram, books.RamBytes());
    }
}
