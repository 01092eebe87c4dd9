using Akka.Configuration;
using Migration.Actors.Drain;
using Migration.Actors.Node;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Two hypervisor nodes with the drain coordinator singleton, as `migration node` runs them. Unlike
/// <see cref="TwoNodeCluster"/>, serialize-messages is off here: Akka.NET's ClusterSingletonManager does not work with it
/// (its own local messages do not survive the round trip; measured: "Expected hand-over to [...] never occurred", the
/// singleton never starts). The drain's messages do cross nodes through Hyperion in the multi-process tests
/// (tests/Migration.Host.Tests/Cluster/DrainTests.cs), and the node messages here still cross between the two systems.
/// </summary>
public sealed class DrainCluster : Xunit.IAsyncLifetime
{
    private static readonly Config TestConfig = ConfigurationFactory.ParseString("""
        akka.loglevel = WARNING
        migration.prefault-destination = off
        """);

    public NodeHost Source { get; private set; } = null!;
    public NodeHost Destination { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Source = NodeHost.Start("127.0.0.1", 0, [], TestConfig);
        DrainSingleton.Start(Source.System, DrainSettings.FromConfig(Source.System.Settings.Config));
        await Source.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        Destination = NodeHost.Start("127.0.0.1", 0, [Source.Address], TestConfig);
        DrainSingleton.Start(Destination.System, DrainSettings.FromConfig(Destination.System.Settings.Config));
        await Destination.WaitUpAsync(2, TimeSpan.FromSeconds(30));
        await Source.WaitUpAsync(2, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        await Destination.DisposeAsync();
        await Source.DisposeAsync();
    }
}
