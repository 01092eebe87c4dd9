using Migration.Actors.Messages;
using Migration.Actors.Source;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>
/// Which connection of a channel each loss, resume and ready is about. The orders of events here are the ones a
/// review found could hang or corrupt the recovery when connections were not told apart (docs/architecture.md).
/// </summary>
public sealed class ChannelLinksTests
{
    private static readonly Guid Id = Guid.NewGuid();

    private static ChannelResume Resume(ushort connection, uint delivered) => new(Id, 0, connection, delivered, [new DeviceReceipt(0, [])]);

    [Fact]
    public void A_loss_then_its_resume_then_a_new_connection_joins_with_the_old_connections_Sync()
    {
        var links = new ChannelLinks(1);
        links.Connected(0, 0);
        Assert.Equal(ChannelLinks.LossAction.AwaitResume, links.OnLost(0, 0));
        Assert.True(links.IsLost(0));
        Assert.Equal(ChannelLinks.ResumeAction.Recover, links.OnResume(Resume(0, 3)));
        links.Recovered(0);
        Assert.False(links.TryJoin(0, out _, out _)); // nothing connected yet

        links.OnReady(0, 1);
        Assert.True(links.TryJoin(0, out var connection, out var delivered));
        Assert.Equal((1, 3u), (connection, delivered));
        Assert.False(links.IsLost(0));
    }

    [Fact]
    public void A_new_connection_ready_before_the_resume_waits_for_the_recovery()
    {
        var links = new ChannelLinks(1);
        links.Connected(0, 0);
        links.OnLost(0, 0);
        links.OnReady(0, 1);
        Assert.False(links.TryJoin(0, out _, out _));

        Assert.Equal(ChannelLinks.ResumeAction.Recover, links.OnResume(Resume(0, 2)));
        links.Recovered(0);
        Assert.True(links.TryJoin(0, out var connection, out var delivered));
        Assert.Equal((1, 2u), (connection, delivered));
    }

    [Fact]
    public void A_new_connection_lost_before_the_old_ones_resume_is_not_joined_on_that_resume()
    {
        // The order that hung before connections were numbered: ready(1), lost(1), then the resume of 0.
        var links = new ChannelLinks(1);
        links.Connected(0, 0);
        links.OnLost(0, 0);
        links.OnReady(0, 1);
        Assert.Equal(ChannelLinks.LossAction.None, links.OnLost(0, 1)); // it carried nothing: nothing to recover

        Assert.Equal(ChannelLinks.ResumeAction.Recover, links.OnResume(Resume(0, 4)));
        links.Recovered(0);
        Assert.False(links.TryJoin(0, out _, out _)); // connection 1 is gone: nothing joins

        // The destination's resume of connection 1 (it saw it too) is stale; connection 2 joins with 0's Sync.
        Assert.Equal(ChannelLinks.ResumeAction.Stale, links.OnResume(Resume(1, 4)));
        links.OnReady(0, 2);
        Assert.True(links.TryJoin(0, out var connection, out var delivered));
        Assert.Equal((2, 4u), (connection, delivered));
    }

    [Fact]
    public void A_late_resume_of_an_abandoned_attempt_does_not_touch_the_connection_in_use()
    {
        // Attempt 1 timed out here but was accepted there; attempt 2 is up; then the destination reports attempt 1's end.
        var links = new ChannelLinks(1);
        links.Connected(0, 0);
        links.OnLost(0, 0);
        links.OnResume(Resume(0, 1));
        links.Recovered(0);
        links.OnReady(0, 2);
        Assert.True(links.TryJoin(0, out _, out _));

        Assert.Equal(ChannelLinks.ResumeAction.Stale, links.OnResume(Resume(1, 1)));
        Assert.False(links.IsLost(0));
        Assert.Equal(ChannelLinks.LossAction.None, links.OnLost(0, 1)); // and a stale loss report changes nothing either
    }

    [Fact]
    public void A_resume_of_the_connection_in_use_closes_it_and_its_loss_recovers_at_once()
    {
        var links = new ChannelLinks(1);
        links.Connected(0, 0);
        Assert.Equal(ChannelLinks.ResumeAction.CloseUp, links.OnResume(Resume(0, 5)));
        Assert.False(links.IsLost(0));

        Assert.Equal(ChannelLinks.LossAction.Recover, links.OnLost(0, 0));
        Assert.Equal(5u, links.ResumeOf(0).DeliveredThroughIteration);
    }

    [Fact]
    public void A_second_resume_of_a_recovered_connection_is_stale()
    {
        var links = new ChannelLinks(1);
        links.Connected(0, 0);
        links.OnLost(0, 0);
        Assert.Equal(ChannelLinks.ResumeAction.Recover, links.OnResume(Resume(0, 1)));
        links.Recovered(0);
        Assert.Equal(ChannelLinks.ResumeAction.Stale, links.OnResume(Resume(0, 1)));
    }
}
