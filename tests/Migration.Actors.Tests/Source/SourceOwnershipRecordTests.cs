using Migration.Actors.Ownership;
using Migration.Actors.Source;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// How the committing source reads a majority record: the destination's epoch completes the migration; a third node's
/// means the guest resumed there and moved on, so the stopped copy is stale and must not be taken back (a take-back at
/// max + 2 would outrank the node that runs it). The same rule as HandoverCustodyDecision's.
/// </summary>
public sealed class SourceOwnershipRecordTests
{
    private const string Src = "akka.tcp://mig@127.0.0.1:1";
    private const string Dst = "akka.tcp://mig@127.0.0.1:2";
    private const string Third = "akka.tcp://mig@127.0.0.1:3";

    private static ClaimResult Read(long epoch, string owner, ClaimOutcome outcome = ClaimOutcome.Won) =>
        new("vm", ClaimKind.Read, outcome, epoch == 0 ? GuestEpoch.None : new GuestEpoch(epoch, owner), "test");

    [Fact]
    public void A_record_naming_a_third_node_is_neither_the_destination_nor_a_reason_to_take_back()
    {
        var ownership = new SourceOwnership(null!, "vm", Src + "/", Dst + "/", TimeSpan.FromSeconds(1));

        Assert.True(ownership.NamesDestination(Read(4, Dst)));
        Assert.False(ownership.NamesThirdNode(Read(4, Dst)));

        Assert.True(ownership.NamesThirdNode(Read(6, Third)));
        Assert.False(ownership.NamesDestination(Read(6, Third)));

        Assert.False(ownership.NamesThirdNode(Read(3, Src))); // still ours: the destination has not claimed
        Assert.False(ownership.NamesThirdNode(Read(0, "")));  // no record
        Assert.False(ownership.NamesThirdNode(Read(6, Third, ClaimOutcome.NoMajority))); // no majority answered: decides nothing
    }
}
