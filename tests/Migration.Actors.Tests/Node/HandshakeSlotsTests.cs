using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>The listener's pending-handshake slots: bounded, the oldest evicted for a newer connection, freed by their owner.</summary>
public sealed class HandshakeSlotsTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [Fact]
    public void A_full_set_evicts_the_oldest_pending_handshake_for_a_new_connection()
    {
        var slots = new HandshakeSlots(3);
        var taken = Enumerable.Range(0, 3).Select(_ => slots.Take(Long, CancellationToken.None)).ToArray();
        Assert.Equal(3, slots.Count);

        using var newest = slots.Take(Long, CancellationToken.None);

        Assert.Equal(3, slots.Count);
        Assert.True(taken[0].Token.IsCancellationRequested);
        Assert.True(taken[0].WasEvicted);
        Assert.False(taken[1].Token.IsCancellationRequested);
        Assert.False(newest.Token.IsCancellationRequested);
        Assert.Equal(1, slots.Evicted);
        foreach (var s in taken)
        {
            s.Dispose();
        }

        Assert.Equal(1, slots.Count);
    }

    [Fact]
    public void A_disposed_slot_is_free_at_once_and_disposing_twice_is_harmless()
    {
        var slots = new HandshakeSlots(2);
        var a = slots.Take(Long, CancellationToken.None);
        using var b = slots.Take(Long, CancellationToken.None);
        a.Dispose();
        a.Dispose();
        using var c = slots.Take(Long, CancellationToken.None);

        Assert.Equal(2, slots.Count);
        Assert.False(b.Token.IsCancellationRequested); // room was made by the dispose, not by evicting b
        Assert.Equal(0, slots.Evicted);
    }

    [Fact]
    public async Task A_slot_is_cancelled_after_its_handshake_timeout_or_when_the_listener_stops()
    {
        var slots = new HandshakeSlots(4);
        using var stopping = new CancellationTokenSource();
        using var shortLived = slots.Take(TimeSpan.FromMilliseconds(50), CancellationToken.None);
        using var longLived = slots.Take(Long, stopping.Token);

        await Task.Delay(Timeout.Infinite, shortLived.Token).ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(shortLived.WasEvicted);
        Assert.False(longLived.Token.IsCancellationRequested);
        await stopping.CancelAsync();
        Assert.True(longLived.Token.IsCancellationRequested);
    }
}
