using Akka.Actor;
using Akka.DistributedData;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Ownership;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// The ownership record decides who runs a stopped guest when one side of its migration ends without a result
/// (docs/architecture.md, "Ownership rules"): the destination's incoming migration stops in stop-copy or while
/// committing (the source takes the guest back at epoch >= e + 2 and resumes it), or the source's coordinator dies
/// after the destination claimed a newer epoch (the source must not resume; it discards its copy).
/// </summary>
[Collection("two-node cluster")]
public sealed class HandoverOwnershipSpecs(TwoNodeCluster cluster) : IClassFixture<TwoNodeCluster>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Majority = TimeSpan.FromSeconds(5);

    private static async Task<GuestEpoch> ReadAsync(NodeHost on, string vm)
    {
        var reply = await DistributedData.Get(on.System).Replicator.Ask<IGetResponse>(Dsl.Get(OwnershipRecord.Key, new ReadMajority(Majority)), Patience);
        return reply is GetSuccess g ? OwnershipRecord.Of(g.Get(OwnershipRecord.Key), vm) : GuestEpoch.None;
    }

    /// <summary>A guest whose stop-copy device state loads at <paramref name="msPerMiB"/> on the destination (8 MiB of it).</summary>
    private async Task<GuestSpec> CreateAsync(string id, double msPerMiB)
    {
        var device = new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 8 << 20, 0, Seed: 9, LoadDelayMsPerMiB: msPerMiB);
        var spec = new GuestSpec(id, 32L << 20, [device], 8L << 20);
        await cluster.CreateGuestAsync(cluster.Source, spec);
        return spec;
    }

    private static async Task KillIncomingAsync(NodeHost destination)
    {
        var incoming = await destination.System.ActorSelection("/user/node/incoming-*").Ask<ActorIdentity>(new Identify(0), TimeSpan.FromSeconds(10));
        Assert.NotNull(incoming.Subject);
        incoming.Subject.Tell(Kill.Instance);
    }

    private async Task AssertRunsOnSourceOnlyAsync(string vm)
    {
        var entry = Assert.Single((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == vm);
        Assert.Equal("running", entry.State);
        Assert.Null(entry.MigrationId);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Destination)).Guests, g => g.VmId == vm);
    }

    [Fact]
    public async Task The_destination_migration_stopping_in_stop_copy_makes_the_source_take_the_guest_back_two_epochs_up()
    {
        var spec = await CreateAsync("peer-stop-copy", 1000);
        var start = await ReadAsync(cluster.Source, spec.Id);
        var settings = TwoNodeCluster.Settings() with { DeviceBufferBudget = 1 << 20, MaxIterations = 1, VerifyTimeout = TimeSpan.FromSeconds(120) };
        var (_, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "stop-copy", Patience);

        await KillIncomingAsync(cluster.Destination);
        var report = await watcher.Finished.WaitAsync(Patience);

        Assert.Equal("failed", report.Status);
        Assert.True(report.DowntimeMs > 0, $"the guest was paused, the report says {report.DowntimeMs} ms");
        var now = await ReadAsync(cluster.Source, spec.Id);
        Assert.Equal(cluster.Source.Address.ToString(), now.Owner);
        Assert.True(now.Epoch >= start.Epoch + 2, $"started at {start}, now {now}");
        await AssertRunsOnSourceOnlyAsync(spec.Id);
    }

    [Fact]
    public async Task The_destination_migration_stopping_while_committing_before_its_claim_makes_the_source_take_the_guest_back()
    {
        var spec = await CreateAsync("peer-committing", 0);
        var start = await ReadAsync(cluster.Source, spec.Id);
        FaultInjection.TryParse("hold:commit=30000", out var hold, out _);
        // The destination waits, verified, for a CommitMigration that the source holds back (and does not ask before
        // commit-timeout): the committing window in which its incoming migration is stopped.
        var settings = TwoNodeCluster.Settings() with { Inject = [hold], MaxIterations = 1, CommitTimeout = TimeSpan.FromSeconds(60) };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "committing", Patience);

        await KillIncomingAsync(cluster.Destination);
        var report = await watcher.Finished.WaitAsync(Patience);

        Assert.Equal("failed", report.Status);
        var now = await ReadAsync(cluster.Source, spec.Id);
        Assert.Equal(cluster.Source.Address.ToString(), now.Owner);
        Assert.True(now.Epoch >= start.Epoch + 2, $"started at {start}, now {now}");
        await AssertRunsOnSourceOnlyAsync(spec.Id);
        var status = await cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(HandoverDecision.KeptBySource, status.Decision);
    }

    [Fact]
    public async Task A_coordinator_that_dies_after_the_destination_claimed_a_newer_epoch_leaves_the_guest_to_it_and_does_not_resume()
    {
        // A verifying window of ~24 s (8 MiB of stop-copy state loading at 3 s per MiB).
        var spec = await CreateAsync("claimed-then-crash", 3000);
        var settings = TwoNodeCluster.Settings() with { DeviceBufferBudget = 16 << 20, MaxIterations = 1, VerifyTimeout = TimeSpan.FromSeconds(120) };
        var (id, watcher) = await cluster.StartAsync(spec.Id, settings);
        await watcher.WaitForAsync(p => p.Phase == "verifying", Patience);

        // The destination's claim of the next epoch as it would write it after DestinationVerified (here written for it,
        // while the verification is still running, so that the coordinator never sees DestinationVerified).
        var start = await ReadAsync(cluster.Destination, spec.Id);
        var destination = cluster.Destination.Address.ToString();
        var claimed = new GuestEpoch(start.Epoch + 1, destination);
        var write = await DistributedData.Get(cluster.Destination.System).Replicator.Ask<IUpdateResponse>(
            OwnershipRecord.SetIf(Akka.Cluster.Cluster.Get(cluster.Destination.System).SelfUniqueAddress, spec.Id, start, claimed, new WriteMajority(Majority), null),
            Patience);
        Assert.IsType<UpdateSuccess>(write);

        cluster.Source.System.ActorSelection($"/user/node/migration-{id:N}").Tell(Kill.Instance);
        var report = await watcher.Finished.WaitAsync(Patience);

        Assert.Equal("handed-over", report.Status);
        Assert.Contains("coordinator ended without a result", report.Error);
        Assert.Contains($"gives the guest to {destination}", report.Error);
        Assert.DoesNotContain((await TwoNodeCluster.ListAsync(cluster.Source)).Guests, g => g.VmId == spec.Id);
        Assert.Equal(claimed, await ReadAsync(cluster.Source, spec.Id));
        var status = await cluster.Destination.System.ActorSelection($"{cluster.Source.Address}/user/node")
            .Ask<HandoverStatus>(new QueryHandover(id), TimeSpan.FromSeconds(10));
        Assert.Equal(HandoverDecision.HandedOver, status.Decision);
    }
}
