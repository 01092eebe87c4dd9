using Migration.Actors.Ownership;
using Xunit;

namespace Migration.Actors.Tests.Ownership;

/// <summary>
/// The rule for the stopped copy a source keeps after its coordinator died past the hand-over (HandoverCustodyDecision):
/// freed only when the record names the destination and the destination lists the guest; taken back only when the
/// destination's node is removed or its incoming migration is gone while a majority read made after that names the
/// source; kept in every other case (never neither).
/// </summary>
public sealed class HandoverCustodyDecisionTests
{
    private const string Source = "akka.tcp://mig@127.0.0.1:4053";
    private const string Destination = "akka.tcp://mig@127.0.0.1:4054";
    private static readonly GuestEpoch OnSource = new(3, Source);
    private static readonly GuestEpoch OnDestination = new(4, Destination);

    private static CustodyVerdict Decide(CustodyFacts facts) => HandoverCustodyDecision.Decide(facts, Source, Destination);

    [Fact]
    public void The_copy_is_kept_while_nothing_is_known() =>
        Assert.Equal(CustodyVerdict.Keep, Decide(default));

    [Fact]
    public void The_copy_is_freed_once_the_record_names_the_destination_and_the_destination_lists_the_guest()
    {
        Assert.Equal(CustodyVerdict.Release, Decide(new CustodyFacts(false, false, null, OnDestination, DestinationRunsGuest: true)));
        Assert.Equal(CustodyVerdict.Release, Decide(new CustodyFacts(false, true, OnDestination, OnDestination, DestinationRunsGuest: true)));
    }

    [Fact]
    public void The_record_naming_the_destination_is_not_enough_while_the_destination_does_not_list_the_guest()
    {
        Assert.Equal(CustodyVerdict.Keep, Decide(new CustodyFacts(false, false, null, OnDestination, DestinationRunsGuest: false)));
        Assert.Equal(CustodyVerdict.Keep, Decide(new CustodyFacts(false, true, OnDestination, OnDestination, DestinationRunsGuest: false)));
    }

    [Fact]
    public void The_destination_listing_the_guest_is_not_enough_while_the_record_names_the_source() =>
        Assert.Equal(CustodyVerdict.Keep, Decide(new CustodyFacts(false, false, null, OnSource, DestinationRunsGuest: true)));

    [Fact]
    public void A_removed_destination_makes_the_source_take_the_guest_back_whatever_it_claimed()
    {
        Assert.Equal(CustodyVerdict.TakeBack, Decide(new CustodyFacts(true, true, null, null, false)));
        Assert.Equal(CustodyVerdict.TakeBack, Decide(new CustodyFacts(true, true, OnSource, OnSource, false)));
        Assert.Equal(CustodyVerdict.TakeBack, Decide(new CustodyFacts(true, true, OnDestination, OnDestination, false)));
    }

    [Fact]
    public void A_gone_incoming_migration_makes_the_source_take_back_only_on_a_read_made_after_it_that_names_the_source_or_nobody()
    {
        Assert.Equal(CustodyVerdict.TakeBack, Decide(new CustodyFacts(false, true, OnSource, OnSource, false)));
        Assert.Equal(CustodyVerdict.TakeBack, Decide(new CustodyFacts(false, true, GuestEpoch.None, GuestEpoch.None, false)));
        // A read from before the loss cannot tell a resume that came after it.
        Assert.Equal(CustodyVerdict.Keep, Decide(new CustodyFacts(false, true, null, OnSource, false)));
        // Alive and still migrating in: the destination may yet claim.
        Assert.Equal(CustodyVerdict.Keep, Decide(new CustodyFacts(false, false, OnSource, OnSource, false)));
    }

    [Fact]
    public void A_newer_epoch_of_a_third_node_frees_the_stale_copy()
    {
        var moved = new GuestEpoch(5, "akka.tcp://mig@127.0.0.1:4055");
        Assert.Equal(CustodyVerdict.Release, Decide(new CustodyFacts(false, true, moved, moved, false)));
        Assert.Equal(CustodyVerdict.Release, Decide(new CustodyFacts(true, true, moved, moved, false)));
    }
}
