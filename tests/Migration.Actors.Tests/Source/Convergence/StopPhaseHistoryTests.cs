using Migration.Actors.Source.Convergence;
using Xunit;

namespace Migration.Actors.Tests.Source.Convergence;

/// <summary>The node's stop-phase history: one slow (JIT-cold) commit round trip never counts alone and does not outlive the next fast ones.</summary>
public sealed class StopPhaseHistoryTests
{
    [Fact]
    public void The_commit_round_trip_counts_from_the_second_hand_over_as_the_shortest_of_the_recent_ones_so_a_cold_first_never_counts()
    {
        var history = new StopPhaseHistory();
        Assert.Equal(0, history.CommitRoundTripMs);

        history.RecordCommitRoundTrip(1316); // a destination's first hand-over: its claim-and-resume path is not jitted yet
        Assert.Equal(0, history.CommitRoundTripMs); // one sample: the coordinator's live ping decides

        history.RecordCommitRoundTrip(19);
        Assert.Equal(19, history.CommitRoundTripMs);
        history.RecordCommitRoundTrip(25);
        Assert.Equal(19, history.CommitRoundTripMs);
    }

    [Fact]
    public void A_destination_that_became_slow_counts_once_the_fast_round_trips_are_older_than_the_recent_ones()
    {
        var history = new StopPhaseHistory();
        history.RecordCommitRoundTrip(10);
        for (var i = 0; i < StopPhaseHistory.RecentCommitRoundTrips; i++)
        {
            history.RecordCommitRoundTrip(200);
        }

        Assert.Equal(200, history.CommitRoundTripMs);
        history.RecordCommitRoundTrip(0); // not a measurement
        Assert.Equal(200, history.CommitRoundTripMs);
    }
}
