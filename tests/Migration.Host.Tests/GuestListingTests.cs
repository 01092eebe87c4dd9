using Migration.Actors.Messages;
using Migration.Host.Cli;
using Xunit;

namespace Migration.Host.Tests;

/// <summary>
/// `vm list` while a member is hung or unreachable: its guests cannot be shown, and the listing must say so rather than
/// print a table that reads as "that node runs no guest" (seen by hand: a node under SIGSTOP made the table silently
/// lose its guests until the cluster removed it).
/// </summary>
public sealed class GuestListingTests
{
    private static NodeInfo Node(string name, bool reachable = true) =>
        new(name, $"akka.tcp://mig@127.0.0.1:{4000 + name[0]}", "Up", reachable, ["hypervisor"]);

    private static GuestInfo Guest(string vm) => new(vm, "A", "running", 1 << 20, 0, null);

    [Fact]
    public void A_node_that_did_not_answer_or_is_unreachable_is_named_and_the_answering_nodes_guests_are_listed()
    {
        var listings = new[]
        {
            new NodeListing(Node("A"), new GuestList("A", [Guest("web2"), Guest("web1")]), null),
            new NodeListing(Node("B"), null, "node akka.tcp://mig@127.0.0.1:4066 unreachable (no answer within 3 s)"),
            new NodeListing(Node("C", reachable: false), null, "unreachable for the cluster"),
        };

        var guests = ClusterClient.Guests(listings);
        Assert.Equal(["web1", "web2"], guests.Select(g => g.Guest.VmId));
        Assert.All(guests, g => Assert.Equal("A", g.Node.Name));

        var missing = ClusterClient.MissingListings(listings).ToArray();
        Assert.Equal(2, missing.Length);
        Assert.Equal("node B: node akka.tcp://mig@127.0.0.1:4066 unreachable (no answer within 3 s); its guests are not listed", missing[0]);
        Assert.Equal("node C: unreachable for the cluster; its guests are not listed", missing[1]);
    }

    [Fact]
    public void When_every_node_answered_nothing_is_reported_missing()
    {
        var listings = new[] { new NodeListing(Node("A"), new GuestList("A", []), null) };
        Assert.Empty(ClusterClient.MissingListings(listings));
        Assert.Empty(ClusterClient.Guests(listings));
    }
}
