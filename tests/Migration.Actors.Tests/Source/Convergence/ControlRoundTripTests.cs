using Migration.Actors.Source.Convergence;
using Xunit;

namespace Migration.Actors.Tests.Source.Convergence;

/// <summary>The control round trip the downtime estimate counts: the latest answer, or an unanswered ping's wait.</summary>
public sealed class ControlRoundTripTests
{
    [Fact]
    public void A_fast_answer_after_a_slow_one_is_the_figure_at_once()
    {
        var rtt = new ControlRoundTrip();
        var first = rtt.TryStart(0)!.Value;
        Assert.True(rtt.OnAnswer(first, 1171)); // answered while the channels saturated the destination
        Assert.Equal(1171, rtt.CurrentMs(1200));

        var second = rtt.TryStart(1200)!.Value;
        Assert.True(rtt.OnAnswer(second, 1212)); // after the transfer
        Assert.Equal(12, rtt.CurrentMs(1250)); // not halfway (591) as before: the verify and commit run after the transfer
    }

    [Fact]
    public void An_unanswered_ping_counts_for_as_long_as_it_has_waited()
    {
        var rtt = new ControlRoundTrip();
        Assert.True(rtt.OnAnswer(rtt.TryStart(0)!.Value, 10));
        rtt.TryStart(100);
        Assert.Equal(10, rtt.CurrentMs(105)); // waiting 5 ms: the last answer is longer
        Assert.Equal(400, rtt.CurrentMs(500)); // a destination that stopped answering does not look fast
    }

    [Fact]
    public void One_ping_at_a_time_and_stale_or_unknown_answers_are_ignored()
    {
        var rtt = new ControlRoundTrip();
        var id = rtt.TryStart(0)!.Value;
        Assert.Null(rtt.TryStart(1)); // one outstanding
        Assert.False(rtt.OnAnswer(id + 1, 5)); // not the outstanding ping's id
        Assert.True(rtt.Outstanding);
        Assert.True(rtt.OnAnswer(id, 7));
        Assert.False(rtt.OnAnswer(id, 9)); // answered already
        Assert.Equal(7, rtt.CurrentMs(100));
        Assert.NotNull(rtt.TryStart(100));
    }

    [Fact]
    public void Before_any_ping_the_figure_is_zero()
    {
        Assert.Equal(0, new ControlRoundTrip().CurrentMs(1000));
    }
}
