using Akka.Actor;
using Akka.Cluster.Tools.Singleton;

namespace Migration.Actors.Drain;

/// <summary>
/// Starts the drain coordinator as an Akka.Cluster.Tools cluster singleton among the hypervisor nodes: every node runs
/// the manager (/user/drain-coordinator; the oldest node's manager runs the one instance) and a proxy at /user/drain,
/// which the CLI and other nodes talk to. When the singleton's node leaves or is downed, the next oldest node starts a
/// new coordinator, which reads the replicated drains and cordons and carries on.
/// </summary>
public static class DrainSingleton
{
    public const string Role = "hypervisor";

    public static void Start(ActorSystem system, DrainSettings settings)
    {
        system.Settings.InjectTopLevelFallback(ClusterSingleton.DefaultConfig());
        system.ActorOf(ClusterSingletonManager.Props(DrainCoordinator.Props(settings), PoisonPill.Instance,
            ClusterSingletonManagerSettings.Create(system).WithRole(Role)), DrainCoordinator.ManagerName);
        system.ActorOf(ClusterSingletonProxy.Props($"/user/{DrainCoordinator.ManagerName}",
            ClusterSingletonProxySettings.Create(system).WithRole(Role)), DrainCoordinator.ProxyName);
    }
}
