using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.DistributedData;

namespace Migration.Actors.Node;

/// <summary>
/// Loads the Akka extensions a node uses before its serialization warm-up. Each of them injects its reference
/// configuration into the system's settings on first use (<c>Settings.InjectTopLevelFallback</c>), and each injection
/// replaces <c>ActorSystem.Serialization</c>, dropping Hyperion's generated serializers; a warm-up made before that is
/// lost and has to run again (about 0.8 s of CPU on this machine's 2 cores, while the node joins its cluster).
/// Called once per incarnation, on the thread that creates the system.
/// </summary>
public static class SystemExtensions
{
    /// <param name="hypervisor">False for a node of role "client": it runs no replicator (distributed-data.role is
    /// hypervisor; starting one would only log that it points to dead letters).</param>
    public static void InjectBeforeWarmup(ActorSystem system, bool hypervisor)
    {
        if (hypervisor)
        {
            _ = DistributedData.Get(system);
        }

        system.Settings.InjectTopLevelFallback(ClusterSingleton.DefaultConfig());
    }
}
