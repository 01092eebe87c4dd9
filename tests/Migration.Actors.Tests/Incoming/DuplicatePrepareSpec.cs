using Migration.Actors.Settings;
using Migration.Actors.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>A PrepareIncoming that reuses the id of a migration already prepared on the node.</summary>
public sealed class DuplicatePrepareSpec(ITestOutputHelper output) : IncomingSpecBase(output)
{
    /// <summary>
    /// HypervisorNode.OnPrepareIncoming names the child "incoming-{id}" without checking the id, so ActorOf throws
    /// InvalidActorNameException; the node actor restarts, its PostStop disposes every guest it owns, the first
    /// incoming migration dies and the channel listener is rebound on another port.
    /// </summary>
    [Fact]
    public async Task Prepare_with_a_migration_id_in_use_is_refused_and_the_node_keeps_its_guests()
    {
        var asker = CreateTestProbe();
        Node.Tell(new CreateGuest(Spec("vm-owned")), asker.Ref);
        await asker.ExpectMsgAsync<GuestCreated>(Timeout);
        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id, Spec("vm-a"));
        var watch = CreateTestProbe();
        watch.Watch(ack.Incoming);

        var other = CreateTestProbe();
        Node.Tell(new PrepareIncoming(id, Spec("vm-b"), MigrationParameters.From(Settings()), other.Ref), other.Ref);

        var refused = await other.ExpectMsgAsync<PrepareRefused>(Timeout);
        Assert.Equal(id, refused.MigrationId);
        await watch.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
        Node.Tell(ListGuests.Instance, asker.Ref);
        var list = await asker.ExpectMsgAsync<GuestList>(Timeout);
        Assert.Equal("vm-owned", Assert.Single(list.Guests).VmId);
        await ConnectAsync(ack, 0);
    }
}
