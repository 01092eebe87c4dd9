using Migration.Actors.Drain;
using Migration.Actors.Settings;
using Xunit;

namespace Migration.Actors.Tests.Drain;

/// <summary>The drain's decisions: both parallelism limits, placement with reservations, one retry elsewhere, the end.</summary>
public sealed class DrainBookTests
{
    private const long GiB = 1L << 30;
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static DrainStatus Drain(string node, int maxParallel, params (string Id, long Ram)[] guests) =>
        Drain(node, maxParallel, [], guests);

    private static DrainStatus Drain(string node, int maxParallel, string[] targets, params (string Id, long Ram)[] guests) =>
        new(Guid.NewGuid(), node, maxParallel, targets, new MigrationSettings(), DrainStatus.Running, T0, null,
            guests.Select(g => DrainBook.NewGuest(g.Id, g.Ram)).ToArray());

    private static NodeCapacity Node(string name, long free, params Guid[] incoming) => new(name, free, 0, incoming, false);

    private static readonly NodeCapacity[] Roomy = [Node("a", 100 * GiB), Node("b", 100 * GiB), Node("c", 100 * GiB)];

    private static DrainGuest Guest(DrainBook book, Guid drain, string vm) => book.Get(drain)!.Guests.Single(g => g.VmId == vm);

    [Fact]
    public void A_drain_never_has_more_than_max_parallel_guests_in_flight()
    {
        var book = new DrainBook();
        var d = Drain("src", 2, ("g1", GiB), ("g2", GiB), ("g3", GiB));
        book.Put(d);

        var first = book.Plan(Roomy, clusterLimit: 10, T0);
        Assert.Equal(2, first.Count);
        Assert.Empty(book.Plan(Roomy, 10, T0));
        Assert.False(book.WantsToStart(10));

        var id = Guid.NewGuid();
        book.Started(d.DrainId, first[0].VmId, id);
        Assert.Empty(book.Plan(Roomy, 10, T0));
        book.Ended(d.DrainId, first[0].VmId, completed: true, null, T0.AddSeconds(1));
        Assert.True(book.WantsToStart(10));

        var next = Assert.Single(book.Plan(Roomy, 10, T0.AddSeconds(1)));
        Assert.DoesNotContain(next.VmId, first.Select(s => s.VmId));
        Assert.Equal(2, book.InFlight);
    }

    [Fact]
    public void The_cluster_wide_limit_holds_over_every_drain()
    {
        var book = new DrainBook();
        var x = Drain("x", 2, ("x1", GiB), ("x2", GiB));
        var y = Drain("y", 2, ("y1", GiB), ("y2", GiB));
        book.Put(x);
        book.Put(y);

        var starts = book.Plan(Roomy, clusterLimit: 3, T0);
        Assert.Equal(3, starts.Count);
        Assert.Equal(2, starts.Count(s => s.DrainId == x.DrainId));
        Assert.Equal(3, book.InFlight);
        Assert.Empty(book.Plan(Roomy, 3, T0));
        Assert.False(book.WantsToStart(3));
    }

    [Fact]
    public void Guests_go_largest_first_to_the_freest_node_and_a_round_reserves_what_it_placed()
    {
        var book = new DrainBook();
        var d = Drain("src", 4, ("small", 2 * GiB), ("big", 6 * GiB), ("mid", 5 * GiB));
        book.Put(d);

        var starts = book.Plan([Node("a", 10 * GiB), Node("b", 7 * GiB)], 10, T0);

        Assert.Equal(["big", "mid", "small"], starts.Select(s => s.VmId));
        Assert.Equal("a", starts[0].Target); // 10 free -> 4 left
        Assert.Equal("b", starts[1].Target); // 7 free -> 2 left
        Assert.Equal("a", starts[2].Target); // a 4, b 2
    }

    [Fact]
    public void A_guest_in_flight_is_reserved_until_its_destination_counts_it_and_then_not_twice()
    {
        var book = new DrainBook();
        var d = Drain("src", 1, ("g1", 6 * GiB), ("g2", 6 * GiB));
        book.Put(d);
        var first = Assert.Single(book.Plan([Node("a", 10 * GiB), Node("b", 8 * GiB)], 10, T0));
        Assert.Equal("a", first.Target);
        var id = Guid.NewGuid();
        book.Started(d.DrainId, "g1", id);

        // g1 lands on a as an incoming migration (a counts it in Used); the book must not reserve it again.
        var d2 = Drain("other", 1, ("h1", 3 * GiB));
        book.Put(d2);
        var start = Assert.Single(book.Plan([new NodeCapacity("a", 10 * GiB, 6 * GiB, [id], false), Node("b", 3 * GiB)], 10, T0));
        Assert.Equal("a", start.Target); // 4 free on a, not -2

        // Without the migration in a's list (not prepared yet) its 6 GiB are reserved there: h1 would not fit on a.
        var book2 = new DrainBook();
        book2.Put(d with { DrainId = Guid.NewGuid() });
        _ = book2.Plan([Node("a", 10 * GiB)], 10, T0).Single();
        book2.Put(Drain("other", 1, ("h1", 5 * GiB)));
        Assert.Empty(book2.Plan([Node("a", 10 * GiB)], 10, T0)); // 10 - 6 reserved < 5: waits
        Assert.Equal(DrainGuest.Pending, book2.Drains[1].Guests[0].State);
    }

    [Fact]
    public void A_failed_migration_is_retried_once_on_another_node_then_reported_failed()
    {
        var book = new DrainBook();
        var d = Drain("src", 2, ("g1", GiB));
        book.Put(d);
        var nodes = new[] { Node("a", 50 * GiB), Node("b", 40 * GiB), Node("c", 30 * GiB) };

        var first = Assert.Single(book.Plan(nodes, 10, T0));
        Assert.Equal("a", first.Target);
        book.Started(d.DrainId, "g1", Guid.NewGuid());
        book.Ended(d.DrainId, "g1", completed: false, "destination died", T0.AddSeconds(5));
        Assert.Equal(DrainGuest.Pending, Guest(book, d.DrainId, "g1").State);

        var second = Assert.Single(book.Plan(nodes, 10, T0.AddSeconds(5)));
        Assert.Equal("b", second.Target); // not a again
        book.Ended(d.DrainId, "g1", completed: false, "refused: lacks memory", T0.AddSeconds(6));

        var g = Guest(book, d.DrainId, "g1");
        Assert.Equal(DrainGuest.Failed, g.State);
        Assert.Contains("attempt 1 to a failed: destination died", g.Error);
        Assert.Contains("attempt 2 to b failed: refused: lacks memory", g.Error);
        Assert.Equal(["a", "b"], g.Attempts.Select(a => a.Target));
        Assert.All(g.Attempts, a => Assert.NotNull(a.EndedUtc));
        Assert.Empty(book.Plan(nodes, 10, T0.AddSeconds(7)));
    }

    [Fact]
    public void Each_start_has_its_own_migration_id_recorded_in_its_attempt_before_the_source_answers()
    {
        var book = new DrainBook();
        var d = Drain("src", 2, ("g1", GiB), ("g2", GiB));
        book.Put(d);
        var starts = book.Plan(Roomy, 10, T0);
        Assert.Equal(2, starts.Count);
        Assert.NotEqual(starts[0].MigrationId, starts[1].MigrationId);
        foreach (var s in starts)
        {
            var g = Guest(book, d.DrainId, s.VmId);
            Assert.Equal(DrainGuest.Starting, g.State);
            Assert.Equal(s.MigrationId, g.MigrationId);
            Assert.Equal(s.MigrationId, g.Attempts.Single().MigrationId);
            Assert.True(book.StillStarting(s));
        }

        // A coordinator that takes over with this record asks for exactly these starts again, under the same ids.
        var restored = new DrainBook();
        restored.Put(book.Get(d.DrainId)!);
        Assert.Equal(starts.OrderBy(s => s.VmId), restored.Unanswered().OrderBy(s => s.VmId));

        // Once an attempt is answered or ended, it is no longer asked for; a replanned attempt has a new id.
        book.Started(d.DrainId, "g1", starts.Single(s => s.VmId == "g1").MigrationId);
        book.Ended(d.DrainId, "g2", completed: false, "refused", T0);
        Assert.Empty(book.Unanswered());
        Assert.False(book.StillStarting(starts.Single(s => s.VmId == "g2")));
        var retry = Assert.Single(book.Plan(Roomy, 10, T0));
        Assert.NotEqual(starts.Single(s => s.VmId == "g2").MigrationId, retry.MigrationId);
        Assert.Equal(retry.MigrationId, Guest(book, d.DrainId, "g2").Attempts[^1].MigrationId);
    }

    [Fact]
    public void A_retry_with_no_other_node_fails_at_once_with_the_reason()
    {
        var book = new DrainBook();
        var d = Drain("src", 1, ["a"], ("g1", GiB));
        book.Put(d);
        var nodes = new[] { Node("a", 50 * GiB), Node("b", 50 * GiB) };
        Assert.Equal("a", Assert.Single(book.Plan(nodes, 10, T0)).Target); // --to a only
        book.Ended(d.DrainId, "g1", completed: false, "refused", T0);

        Assert.Empty(book.Plan(nodes, 10, T0));
        var g = Guest(book, d.DrainId, "g1");
        Assert.Equal(DrainGuest.Failed, g.State);
        Assert.Contains("no node to move it to", g.Error);
    }

    [Fact]
    public void A_guest_that_fits_nowhere_fails_while_one_waiting_only_for_reservations_stays_pending()
    {
        var book = new DrainBook();
        var d = Drain("src", 2, ("huge", 64 * GiB), ("g1", 3 * GiB), ("g2", 3 * GiB));
        book.Put(d);

        var starts = book.Plan([Node("a", 4 * GiB)], 10, T0);

        Assert.Equal("g1", Assert.Single(starts).VmId);
        Assert.Equal(DrainGuest.Failed, Guest(book, d.DrainId, "huge").State);
        Assert.Contains("no node has 64 GiB free", Guest(book, d.DrainId, "huge").Error);
        Assert.Equal(DrainGuest.Pending, Guest(book, d.DrainId, "g2").State); // a has 1 GiB left while g1 is on its way
    }

    [Fact]
    public void A_drain_ends_done_when_every_guest_moved_failed_otherwise_and_takes_guests_that_arrived_meanwhile()
    {
        var book = new DrainBook();
        var d = Drain("src", 2, ("g1", GiB));
        book.Put(d);
        book.Plan(Roomy, 10, T0);
        Assert.False(book.Close(d.DrainId, [], T0)); // g1 still in flight: not closable
        Assert.True(book.Get(d.DrainId)!.IsRunning);
        book.Ended(d.DrainId, "g1", completed: true, null, T0);

        Assert.True(book.Close(d.DrainId, [("late", GiB)], T0)); // arrived during the drain
        Assert.Equal(DrainGuest.Pending, Guest(book, d.DrainId, "late").State);
        book.Plan(Roomy, 10, T0);
        book.Ended(d.DrainId, "late", completed: true, null, T0);
        Assert.False(book.Close(d.DrainId, [], T0.AddSeconds(9)));
        Assert.Equal(DrainStatus.Done, book.Get(d.DrainId)!.State);
        Assert.Equal(T0.AddSeconds(9), book.Get(d.DrainId)!.EndedUtc);

        var f = Drain("src2", 1, ["a"], ("g9", GiB));
        book.Put(f);
        book.Plan(Roomy, 10, T0);
        book.Ended(f.DrainId, "g9", completed: false, "x", T0);
        book.Plan(Roomy, 10, T0);
        book.Close(f.DrainId, [("g9", GiB)], T0);
        Assert.Equal(DrainStatus.Failed, book.Get(f.DrainId)!.State);
    }

    [Fact]
    public void Uncordon_cancels_the_pending_guests_of_a_running_drain_and_leaves_those_in_flight()
    {
        var book = new DrainBook();
        var d = Drain("src", 1, ("g1", GiB), ("g2", GiB), ("g3", GiB));
        book.Put(d);
        var running = Assert.Single(book.Plan(Roomy, 10, T0));

        Assert.Equal(2, book.CancelPending("src"));
        Assert.Equal(DrainGuest.Starting, Guest(book, d.DrainId, running.VmId).State);
        Assert.Equal(2, book.Get(d.DrainId)!.Guests.Count(g => g.State == DrainGuest.Cancelled));
        Assert.Empty(book.Plan(Roomy, 10, T0));
    }

    [Fact]
    public void Progress_never_goes_backwards_and_a_late_or_duplicate_end_is_ignored()
    {
        var book = new DrainBook();
        var d = Drain("src", 1, ("g1", GiB));
        book.Put(d);
        book.Plan(Roomy, 10, T0);
        var id = Guid.NewGuid();
        book.Started(d.DrainId, "g1", id);
        book.Progress(id, 40);
        book.Progress(id, 30);
        Assert.Equal(40, Guest(book, d.DrainId, "g1").Percent);
        Assert.Equal((d.DrainId, "g1"), book.Find(id));

        book.Ended(d.DrainId, "g1", completed: true, null, T0);
        book.Ended(d.DrainId, "g1", completed: false, "late", T0);
        Assert.Equal(DrainGuest.Done, Guest(book, d.DrainId, "g1").State);
        Assert.Single(Guest(book, d.DrainId, "g1").Attempts);
    }
}
