using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// A two-member hypervisor cluster must survive the death of either member (the default split-brain resolver
/// would shut the survivor down when the lowest-address member dies).
/// </summary>
public sealed class SurvivorDowningSpecs
{
    private static readonly Config FastDowning = ConfigurationFactory.ParseString("""
        akka.loglevel = ERROR
        akka.cluster.survivor-downing.stable-after = 1s
        akka.cluster.failure-detector.heartbeat-interval = 200ms
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 1s
        """);

    [Fact]
    public async Task When_the_lowest_address_member_dies_the_survivor_downs_it_and_keeps_running()
    {
        var a = NodeHost.Start("127.0.0.1", 0, [], FastDowning);
        await a.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        var b = NodeHost.Start("127.0.0.1", 0, [a.Address], FastDowning);
        await b.WaitUpAsync(2, TimeSpan.FromSeconds(30));

        // Kill the member with the lowest address, the case in which the default resolver downs the survivor.
        var ordered = new[] { a, b }.OrderBy(n => Akka.Cluster.Cluster.Get(n.System).SelfAddress, Member.AddressOrdering).ToArray();
        var (victim, survivor) = (ordered[0], ordered[1]);
        var victimAddress = Akka.Cluster.Cluster.Get(victim.System).SelfAddress;
        await victim.System.Terminate(); // abrupt: no graceful leave

        var cluster = Akka.Cluster.Cluster.Get(survivor.System);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (cluster.State.Members.Any(m => m.Address == victimAddress) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        Assert.DoesNotContain(cluster.State.Members, m => m.Address == victimAddress);
        Assert.False(survivor.System.WhenTerminated.IsCompleted, "the survivor's ActorSystem must keep running");
        Assert.False(cluster.IsTerminated, "the survivor must stay a cluster member");
        Assert.Contains(cluster.State.Members, m => m.Address == cluster.SelfAddress && m.Status == MemberStatus.Up);

        // And it still serves commands.
        var list = await survivor.Node.Ask<object>(ListGuests.Instance, TimeSpan.FromSeconds(5));
        Assert.IsType<GuestList>(list);
        await survivor.DisposeAsync();
    }
}
