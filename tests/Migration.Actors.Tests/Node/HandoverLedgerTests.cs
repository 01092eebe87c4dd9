using Migration.Actors.Messages;
using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>The source node's answer to QueryHandover, as its ledger computes it from the coordinator's reports.</summary>
public sealed class HandoverLedgerTests
{
    private readonly HandoverLedger _ledger = new(capacity: 3);

    [Fact]
    public void A_migration_the_node_never_ran_is_unknown() =>
        Assert.Equal(HandoverDecision.Unknown, _ledger.Decide(Guid.NewGuid()));

    [Fact]
    public void A_running_migration_before_the_hand_over_is_in_progress()
    {
        var id = Guid.NewGuid();
        _ledger.Started(id);
        Assert.Equal(HandoverDecision.InProgress, _ledger.Decide(id));
    }

    [Fact]
    public void A_migration_that_released_the_guest_is_handed_over_while_committing_and_after_it_ended()
    {
        var id = Guid.NewGuid();
        _ledger.Started(id);
        _ledger.HandedOver(id);
        Assert.Equal(HandoverDecision.HandedOver, _ledger.Decide(id));
        _ledger.Ended(id, handedOver: true);
        Assert.Equal(HandoverDecision.HandedOver, _ledger.Decide(id));
    }

    [Fact]
    public void A_migration_that_ended_without_releasing_the_guest_was_kept_by_the_source()
    {
        var id = Guid.NewGuid();
        _ledger.Started(id);
        _ledger.Ended(id, handedOver: false);
        Assert.Equal(HandoverDecision.KeptBySource, _ledger.Decide(id));
    }

    [Fact]
    public void Handed_over_is_final_even_if_the_end_report_says_otherwise()
    {
        var id = Guid.NewGuid();
        _ledger.Started(id);
        _ledger.HandedOver(id);
        _ledger.Ended(id, handedOver: false);
        Assert.Equal(HandoverDecision.HandedOver, _ledger.Decide(id));
        _ledger.Started(id); // a repeated start cannot move it back either
        Assert.Equal(HandoverDecision.HandedOver, _ledger.Decide(id));
    }

    [Fact]
    public void Outcomes_of_the_oldest_ended_migrations_are_pruned_beyond_capacity_but_running_ones_never()
    {
        var running = Guid.NewGuid();
        _ledger.Started(running);
        var ended = Enumerable.Range(0, 4).Select(_ => Guid.NewGuid()).ToArray();
        foreach (var id in ended)
        {
            _ledger.Started(id);
            _ledger.Ended(id, handedOver: true);
            _ledger.Ended(id, handedOver: true); // a duplicate end report does not count twice
        }

        Assert.Equal(HandoverDecision.Unknown, _ledger.Decide(ended[0]));
        Assert.All(ended[1..], id => Assert.Equal(HandoverDecision.HandedOver, _ledger.Decide(id)));
        Assert.Equal(HandoverDecision.InProgress, _ledger.Decide(running));
    }
}
