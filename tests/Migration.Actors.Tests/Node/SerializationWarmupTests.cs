using Akka.Actor;
using Akka.DistributedData;
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
}
