using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Devices.Guest;
using Migration.Devices.Workload;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Creating a guest fills its RAM off the node's thread: the node keeps answering meanwhile, the guest's id and RAM are
/// reserved until it runs, and it is listed only once it does.
/// </summary>
public sealed class GuestCreationSpecs
{
    [Fact]
    public async Task While_a_guest_is_being_filled_the_node_answers_lists_it_not_yet_and_refuses_its_id_and_its_memory()
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = ERROR\nmigration.node-memory-capacity = 1280MiB");
        await using var node = NodeHost.Start("127.0.0.1", 0, [], config);
        await node.WaitUpAsync(1, TimeSpan.FromSeconds(30));

        // 1 GiB of random RAM: its fill takes far longer than the node needs to answer the messages queued behind it.
        var big = new GuestSpec("big", 1L << 30, [], Fill: RamFillPattern.Random);
        var created = node.Node.Ask<object>(new CreateGuest(big), TimeSpan.FromSeconds(120));
        var listed = node.Node.Ask<object>(ListGuests.Instance, TimeSpan.FromSeconds(120));
        var again = node.Node.Ask<object>(new CreateGuest(big), TimeSpan.FromSeconds(120));
        var tooMuch = node.Node.Ask<object>(new CreateGuest(new GuestSpec("small", 512L << 20, [])), TimeSpan.FromSeconds(120));

        // All three answered while the fill runs: before GuestCreated (a node blocked by the fill would answer after it).
        var first = await Task.WhenAny(created, Task.WhenAll(listed, again, tooMuch));
        Assert.NotSame(created, first);
        Assert.False(created.IsCompleted, "the guest was created before the node answered the messages behind its CreateGuest");
        Assert.DoesNotContain(Assert.IsType<GuestList>(await listed).Guests, g => g.VmId == "big");
        Assert.Equal("exists", Assert.IsType<CommandFailed>(await again).Code);
        Assert.Equal("no-memory", Assert.IsType<CommandFailed>(await tooMuch).Code); // the 1 GiB being filled counts
        // /metrics counts what the capacity check counts: the reserved 1 GiB is used while the fill runs.
        var snapshot = Migration.Actors.Metrics.NodeMetrics.Get(node.System).Current;
        Assert.False(created.IsCompleted, "the fill ended before the metrics were read; the check below would prove nothing");
        Assert.Equal(1L << 30, snapshot.MemoryUsedBytes);
        Assert.Equal((1280L << 20) - (1L << 30), snapshot.MemoryFreeBytes);

        Assert.IsType<GuestCreated>(await created);
        var after = Assert.IsType<GuestList>(await node.Node.Ask<object>(ListGuests.Instance, TimeSpan.FromSeconds(10)));
        Assert.Equal("running", Assert.Single(after.Guests, g => g.VmId == "big").State);
    }
}
