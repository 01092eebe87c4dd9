using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Devices.Guest;
using Migration.Devices.Ram;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>Two nodes whose memory pools hand returned memory out again at once (no quarantine), for the pool specs.</summary>
public sealed class PooledTwoNodeCluster : IAsyncLifetime
{
    public TwoNodeCluster Cluster { get; } = new(ConfigurationFactory.ParseString("migration.memory-pool.quarantine = 0s"));

    public Task InitializeAsync() => Cluster.InitializeAsync();

    public Task DisposeAsync() => Cluster.DisposeAsync();
}

/// <summary>Incoming guests built over the destination node's pool of touched memory.</summary>
public sealed class MemoryPoolSpecs(PooledTwoNodeCluster fixture) : IClassFixture<PooledTwoNodeCluster>
{
    private TwoNodeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task A_guest_migrating_into_memory_a_former_guest_left_behind_matches_the_source_and_shows_none_of_the_former_bytes()
    {
        const long ram = 48L << 20;
        var pool = NodeMemoryPool.Get(Cluster.Destination.System).Pool;
        // A former guest's RAM, every byte 0xAB, left in the destination's pool.
        var former = RamBlock.Create("former", ram);
        former.Pages(0, former.PageCount).Fill(0xAB);
        pool.Return(former);
        var reusedBefore = pool.State().ReusedBytes;

        // Mostly zero pages: the source sends them as zero-page markers, which must clear the former bytes.
        var spec = new GuestSpec("pooled", ram, [], 4L << 20, Devices.Workload.RamFillPattern.Zero90, Seed: 3);
        await Cluster.CreateGuestAsync(Cluster.Source, spec);
        var (_, watcher) = await Cluster.StartAsync(spec.Id, TwoNodeCluster.Settings());
        var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(90));

        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.True(pool.State().ReusedBytes - reusedBefore >= ram, "the incoming guest was not built over pooled memory");
        var digests = Assert.IsType<GuestDigests>(await Cluster.Destination.Node.Ask<object>(new GetGuestDigests(spec.Id), TimeSpan.FromSeconds(30)));
        Assert.True(digests.WorkloadPatternOk, digests.PatternMessage);

        // The source's copy went to the source node's pool, and `vm list` shows both pools.
        var list = await TwoNodeCluster.ListAsync(Cluster.Source);
        Assert.NotNull(list.Pool);
        Assert.True(list.Pool!.HeldBytes >= ram, $"source pool holds {list.Pool.HeldBytes} bytes after the guest left");
        Assert.NotNull((await TwoNodeCluster.ListAsync(Cluster.Destination)).Pool);
    }
}
