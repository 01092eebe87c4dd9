using Migration.Actors.Messages;
using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>The store keeps ended migrations' reports for the node's next incarnation (`status ID` after a rejoin).</summary>
public sealed class GuestStoreReportsTests
{
    [Fact]
    public void Reports_are_kept_oldest_first_a_repeated_id_replaces_its_report_and_only_the_last_100_stay()
    {
        var store = new GuestStore();
        var first = Guid.NewGuid();
        store.RememberReport(first, new MigrationReport { MigrationId = first, Status = "failed" });
        store.RememberReport(first, new MigrationReport { MigrationId = first, Status = "handed-over" });
        Assert.Equal("handed-over", Assert.Single(store.Reports()).Report.Status);

        var ids = Enumerable.Range(0, 100).Select(_ => Guid.NewGuid()).ToArray();
        foreach (var id in ids)
        {
            store.RememberReport(id, new MigrationReport { MigrationId = id, Status = "completed" });
        }

        var kept = store.Reports();
        Assert.Equal(100, kept.Count);
        Assert.DoesNotContain(kept, r => r.Id == first);
        Assert.Equal(ids, kept.Select(r => r.Id));
    }
}
