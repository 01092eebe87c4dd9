using Akka.Actor;
using Akka.DistributedData;
using Migration.Actors.Drain;
using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>
/// The warm-up follows the system's Serialization instance: Akka replaces it when an extension injects its reference
/// configuration, and a warm-up of the replaced instance is worth nothing (a first DestinationVerified then paid
/// 80-100 ms of Hyperion code generation inside the downtime).
/// </summary>
public sealed class SerializationWarmupTests
{
    [Fact]
    public async Task Loading_an_extension_replaces_the_systems_serialization_and_the_warmup_runs_again_for_the_new_one()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("akka.actor.provider = cluster\nakka.remote.dot-netty.tcp.port = 0\nakka.remote.dot-netty.tcp.hostname = 127.0.0.1")
            .WithFallback(SpecConfig.Base);
        var system = ActorSystem.Create("warmup", config);
        try
        {
            Assert.True(SerializationWarmup.EnsureWarm(system, system.DeadLetters));
            Assert.True(SerializationWarmup.IsWarm(system));
            Assert.False(SerializationWarmup.EnsureWarm(system, system.DeadLetters)); // nothing reloaded: a reference compare

            var before = system.Serialization;
            _ = DistributedData.Get(system); // injects its reference configuration, as the node's ownership store does
            Assert.NotSame(before, system.Serialization);
            Assert.False(SerializationWarmup.IsWarm(system));

            Assert.True(SerializationWarmup.EnsureWarm(system, system.DeadLetters));
            Assert.True(SerializationWarmup.IsWarm(system));
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_node_warms_once_its_extensions_are_loaded_so_joining_and_the_drain_singleton_keep_it_warm()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = ERROR");
        await using var node = NodeHost.Start("127.0.0.1", 0, [], config);
        var warmed = node.System.Serialization;
        Assert.True(SerializationWarmup.IsWarm(node.System));

        await node.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        // What a node process does after start (NodeCommand), and what its actors load on first use.
        DrainSingleton.Start(node.System, DrainSettings.FromConfig(node.System.Settings.Config));
        _ = DistributedData.Get(node.System);

        Assert.Same(warmed, node.System.Serialization);
        Assert.False(SerializationWarmup.EnsureWarm(node.System, node.System.DeadLetters)); // a reference compare, no second warm-up
    }
}
