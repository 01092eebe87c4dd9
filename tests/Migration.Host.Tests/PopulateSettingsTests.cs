using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Host.Bench;
using Xunit;

namespace Migration.Host.Tests;

/// <summary>
/// migration.populate-ahead / populate-threads: the reference configuration leaves populating off, threads resolve
/// to min(2, cores), bad values are refused naming the key, and the bench's diagnostics reach the destination node.
/// </summary>
public sealed class PopulateSettingsTests
{
    [Fact]
    public void The_reference_configuration_leaves_populating_off_with_threads_resolved_to_min_2_cores()
    {
        var s = MigrationSettings.FromConfig(NodeHost.ReferenceConfig());
        Assert.Equal(0, s.PopulateAhead);
        Assert.Equal(0, s.PopulateThreads);
        Assert.Equal(Math.Min(2, Environment.ProcessorCount), s.EffectivePopulateThreads);
    }

    [Fact]
    public void Populate_keys_are_read_and_out_of_range_threads_are_refused()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("migration { populate-ahead = 256MiB, populate-threads = 3 }");
        var s = MigrationSettings.FromConfig(config);
        Assert.Equal(256L << 20, s.PopulateAhead);
        Assert.Equal(3, s.EffectivePopulateThreads);

        var bad = Akka.Configuration.ConfigurationFactory.ParseString("migration.populate-threads = 17");
        Assert.Contains("populate-threads = 17", Assert.Throws<ArgumentException>(() => MigrationSettings.FromConfig(bad)).Message);
    }

    [Fact]
    public void The_bench_diagnostics_become_destination_node_keys_beside_the_memory_mode()
    {
        var options = new BenchOptions([], PopulateAhead: 128L << 20, PopulateThreads: 1);
        var config = options.DestinationConfig(DestinationMemory.For(warm: false, 1L << 30));
        Assert.Equal("134217728B", config["populate-ahead"]);
        Assert.Equal("1", config["populate-threads"]);
        Assert.Equal("off", config["memory-pool.enabled"]);
        Assert.False(new BenchOptions([]).DestinationConfig(DestinationMemory.For(false, 1L << 30)).ContainsKey("populate-ahead"));
    }
}
