using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>
/// A CreateGuest on this node: checked (<see cref="NodeCommandChecks"/>), then the guest is built off the node's thread
/// (<see cref="Build"/>) and comes back as <see cref="Built"/>, which enters it in the registry and the store and has its
/// first epoch recorded (<see cref="CreatedGuestClaims"/>, which answers GuestCreated). Called on the
/// <see cref="HypervisorNode"/>'s thread only; <see cref="Stop"/> in the node's PostStop.
/// </summary>
internal sealed class GuestCreation(IActorContext context, NodeCommandChecks checks, GuestRegistry guests, GuestStore store,
    NodeMetricsFeed metrics, CreatedGuestClaims creations)
{
    private readonly CancellationTokenSource _lifetime = new(); // cancelled by Stop: a guest still being built is then disposed by its build task

    /// <summary>A guest built off the node's thread (<see cref="Build"/>): the guest, or why it could not be built. Never leaves the process.</summary>
    public sealed record Built(GuestSpec Spec, IActorRef ReplyTo, GuestVm? Guest, Exception? Error) : INoSerializationVerificationNeeded;

    public void OnCreate(CreateGuest c, IActorRef sender)
    {
        try
        {
            c.Spec.Validate();
            if (checks.Refused(c, sender))
            {
                return;
            }

            Build(c.Spec, sender);
        }
        catch (ArgumentException e)
        {
            sender.Tell(new CommandFailed($"cannot create guest {c.Spec.Id}: {e.Message}", "bad-guest"));
        }
    }

    public void OnBuilt(Built b)
    {
        guests.EndBuilding(b.Spec.Id);
        if (b.Guest is not { } guest)
        {
            b.ReplyTo.Tell(new CommandFailed($"cannot create guest {b.Spec.Id}: {b.Error?.Message}", "bad-guest"));
            return;
        }

        guests.Run(guest);
        store.Add(guest);
        creations.Record(b.Spec.Id, b.ReplyTo); // answers GuestCreated once the record has it (or the write timed out)
        metrics.Publish();
    }

    /// <summary>The node stops: a guest still being built is disposed by its build task (nobody would own it).</summary>
    public void Stop() => _lifetime.Cancel();

    /// <summary>
    /// Allocates and fills the guest's RAM on a thread of its own, not on the node's: filling gigabytes takes seconds,
    /// and a node blocked that long answers nothing and delays the cluster's heartbeats past the failure detector's
    /// pause (an 8 GiB fill got a node downed: docs/benchmarks.md, "Back to back with tiered compilation off"). The
    /// id and the RAM are reserved meanwhile (GuestRegistry.BeginBuilding); the result comes back as <see cref="Built"/>.
    /// </summary>
    private void Build(GuestSpec spec, IActorRef replyTo)
    {
        guests.BeginBuilding(spec);
        metrics.Publish(); // the reserved RAM counts as used from here, as it does for the capacity check
        var lifetime = _lifetime.Token;
        Task.Factory.StartNew(() =>
            {
                var guest = GuestFactory.CreateRunning(spec);
                if (lifetime.IsCancellationRequested)
                {
                    guest.Dispose();
                    throw new OperationCanceledException($"node stopped while guest {spec.Id} was being created");
                }

                return guest;
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
            .PipeTo(context.Self, success: g => new Built(spec, replyTo, g, null), failure: e => new Built(spec, replyTo, null, e.GetBaseException()));
    }
}
