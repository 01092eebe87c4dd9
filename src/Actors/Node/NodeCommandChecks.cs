using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Actors.Node;

/// <summary>
/// The node's checks before it creates a guest (CreateGuest), starts an outgoing migration (StartMigration) or receives
/// one (PrepareIncoming): each refusal is answered here, with the same replies and reasons as always; what passes is
/// done by the node. Called on the node's thread only, with the message's sender.
/// </summary>
internal sealed class NodeCommandChecks(string nodeName, MigrationSettings defaults, ILoggingAdapter log, GuestRegistry guests,
    IncomingMigrations incoming, OutgoingMigrations outgoing, MigrationHistory history, CordonView cordon)
{
    /// <summary>True if the CreateGuest was refused here (its spec was validated by the caller).</summary>
    public bool Refused(CreateGuest c, IActorRef sender)
    {
        if (cordon.Refusal("new guests") is { } cordoned)
        {
            sender.Tell(new CommandFailed(cordoned, "cordoned"));
            return true;
        }

        if (guests.IsTaken(c.Spec.Id))
        {
            sender.Tell(new CommandFailed($"guest {c.Spec.Id} already exists on {nodeName}", "exists"));
            return true;
        }

        // A stopped copy handed over but not yet confirmed resumed elsewhere may still be taken back here: a new
        // guest under its id would be overwritten by that take-back (or would hide it).
        if (guests.HandedOverMigrationOf(c.Spec.Id) is { } held)
        {
            sender.Tell(new CommandFailed($"guest {c.Spec.Id} is still held on {nodeName}: its migration {held} handed it over, and the destination's " +
                                          "resume is not confirmed yet; try again once that migration has ended", "exists"));
            return true;
        }

        if (guests.LacksMemory(c.Spec.RamBytes, out var why))
        {
            sender.Tell(new CommandFailed(why, "no-memory"));
            return true;
        }

        return false;
    }

    /// <summary>
    /// True if the StartMigration was answered here (refused, or a known id answered again); false: start it for
    /// <paramref name="entry"/>, the guest's registry entry.
    /// </summary>
    public bool Answered(StartMigration s, IActorRef sender, IActorRef self, [NotNullWhen(false)] out GuestEntry? entry)
    {
        entry = null;
        if (s.MigrationId is { } asked && AnswerKnownStart(s, asked, sender, self))
        {
            return true;
        }

        if (!guests.TryGet(s.VmId, out entry))
        {
            sender.Tell(new CommandFailed($"unknown guest {s.VmId} on {nodeName}", "unknown-guest"));
            return true;
        }

        if (entry.State == HypervisorNode.UnconfirmedState)
        {
            sender.Tell(new CommandFailed($"guest {s.VmId} on {nodeName} waits for the ownership record to confirm that it runs here", "unconfirmed"));
            return true;
        }

        if (entry.MigrationId is { } running)
        {
            sender.Tell(new CommandFailed($"guest {s.VmId} is already migrating (migration {running})", "already-migrating"));
            return true;
        }

        if (string.Equals(s.DestinationNode.TrimEnd('/'), nodeName, StringComparison.Ordinal))
        {
            sender.Tell(new CommandFailed($"guest {s.VmId} already runs on {nodeName}", "same-node"));
            return true;
        }

        if (cordon.IsCordoned(s.DestinationNode))
        {
            sender.Tell(new CommandFailed($"destination {s.DestinationNode} is cordoned (being drained); `uncordon` lifts it", "cordoned"));
            return true;
        }

        try
        {
            s.Settings.Validate();
        }
        catch (ArgumentException e)
        {
            sender.Tell(new CommandFailed(e.Message, "bad-settings"));
            return true;
        }

        return false;
    }

    /// <summary>
    /// True if the PrepareIncoming was refused here (PrepareRefused to <paramref name="sender"/>) or waits behind an
    /// incoming copy of the same guest from the same source that it supersedes (<see cref="IncomingMigrations.DeferBehindSuperseded"/>:
    /// handled again once that copy is gone); false: receive it now with <paramref name="effective"/> settings.
    /// </summary>
    public bool NotAdmittedNow(PrepareIncoming p, IActorRef sender, out MigrationSettings effective)
    {
        effective = defaults;
        if (incoming.Contains(p.MigrationId) || outgoing.IsRunning(p.MigrationId) || history.IsFinished(p.MigrationId))
        {
            sender.Tell(new PrepareRefused(p.MigrationId, $"migration {p.MigrationId} is already known on {nodeName}"));
            return true;
        }

        if (cordon.Refusal("incoming migrations") is { } cordoned)
        {
            sender.Tell(new PrepareRefused(p.MigrationId, cordoned));
            return true;
        }

        // Validated first (spec, parameters, source present): a malformed prepare is refused with its reason, and
        // neither reads a missing field nor discards a copy it would supersede.
        if (!IncomingAdmission.TryAdmit(p, defaults, guests.MemoryCapacity, out effective, out var refusal))
        {
            sender.Tell(new PrepareRefused(p.MigrationId, refusal));
            return true;
        }

        if (incoming.DeferBehindSuperseded(p, sender, log))
        {
            return true;
        }

        if (guests.IsTaken(p.Spec.Id))
        {
            sender.Tell(new PrepareRefused(p.MigrationId, $"guest {p.Spec.Id} already exists on {nodeName}"));
            return true;
        }

        if (guests.LacksMemory(p.Spec.RamBytes, out var why))
        {
            sender.Tell(new PrepareRefused(p.MigrationId, why));
            return true;
        }

        return false;
    }

    /// <summary>
    /// A StartMigration with the caller's id: true (answered) if the id is empty, in use here for another guest or
    /// direction, or already this guest's migration (answered MigrationStarted again, the subscriber then gets its
    /// progress or its MigrationFinished). False: a new id, to be started as usual.
    /// </summary>
    private bool AnswerKnownStart(StartMigration s, Guid asked, IActorRef sender, IActorRef self)
    {
        if (asked == Guid.Empty)
        {
            sender.Tell(new CommandFailed($"migration id {asked}: expected a new, non-empty id or none", "bad-settings"));
            return true;
        }

        if (incoming.Contains(asked))
        {
            sender.Tell(new CommandFailed($"migration id {asked} is an incoming migration on {nodeName}, not one of its guests leaving", "bad-settings"));
            return true;
        }

        if (!history.TryGetStarted(asked, out var known))
        {
            return false;
        }

        if (!string.Equals(known.VmId, s.VmId, StringComparison.Ordinal) || !string.Equals(known.Destination.TrimEnd('/'), s.DestinationNode.TrimEnd('/'), StringComparison.Ordinal))
        {
            sender.Tell(new CommandFailed($"migration id {asked} is already guest {known.VmId}'s migration to {known.Destination} on {nodeName}, not {s.VmId} to {s.DestinationNode}", "bad-settings"));
            return true;
        }

        sender.Tell(new MigrationStarted(asked, s.VmId));
        if (s.Subscriber is { } subscriber && !subscriber.IsNobody())
        {
            self.Tell(new SubscribeMigration(asked, subscriber)); // its progress, or MigrationFinished if it ended
        }

        return true;
    }
}
