using Akka.Actor;

namespace Migration.Actors.Node;

/// <summary>
/// Supervision of the top-level actors (the HypervisorNode): resume after an exception instead of restarting.
/// A restart would throw away the node's registry of running guests (and dispose them); a bug or a hostile
/// message while handling one command must not cost the node its guests. Configured as
/// akka.actor.guardian-supervisor-strategy in hocon/cluster.conf.
/// </summary>
public sealed class ResumingGuardianStrategy : SupervisorStrategyConfigurator
{
    public override SupervisorStrategy Create() =>
        new OneForOneStrategy(e => e is ActorInitializationException or ActorKilledException ? Directive.Stop : Directive.Resume);
}
