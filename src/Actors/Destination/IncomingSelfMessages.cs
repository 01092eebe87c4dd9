using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Devices.Guest;

namespace Migration.Actors.Destination;

// The messages an IncomingMigration sends itself: results of work done off its thread (piped back) and the ticks of
// its timers. In-process only, never serialized. The collaborators schedule them on the actor's timers; only the
// actor's states handle them.

/// <summary>PreStart's allocation finished on the thread pool; the guest is the actor's from here.</summary>
internal sealed record Allocated(GuestVm Guest) : INoSerializationVerificationNeeded;

/// <summary>PreStart's allocation failed; the source is refused.</summary>
internal sealed record AllocationFailed(string Reason) : INoSerializationVerificationNeeded;

/// <summary>The RAM tracker hashed the last segments after every channel ended (IncomingVerification.StartRamHashing).</summary>
internal sealed record RamDigestsReady(string[] Digests) : INoSerializationVerificationNeeded;

/// <summary>A bounded wait ran out before Verified: it fails the migration ("timed out " + What). In Verified one that is
/// still in flight is stale and only logged: the commit's own timeout is <see cref="CommitTimeout"/>.</summary>
internal sealed record IncomingTimeout(string What) : INoSerializationVerificationNeeded;

/// <summary>The commit did not come in time after DestinationVerified (LostCommitResolver.AwaitCommit): the copy here is
/// in doubt and the resolver starts asking. A type of its own, so that no other wait's timer can be taken for it.</summary>
internal sealed record CommitTimeout : INoSerializationVerificationNeeded
{
    public static readonly CommitTimeout Instance = new();
}

/// <summary>Tick of the allocation probe (every 200 ms while receiving).</summary>
internal sealed record SampleAllocation : INoSerializationVerificationNeeded
{
    public static readonly SampleAllocation Instance = new();
}

/// <summary>Tick of the traffic report to the node (every progress-interval while receiving).</summary>
internal sealed record TrafficTick : INoSerializationVerificationNeeded
{
    public static readonly TrafficTick Instance = new();
}

/// <summary>In doubt: ask the source node again whether it released the guest (LostCommitResolver).</summary>
internal sealed record AskSource : INoSerializationVerificationNeeded
{
    public static readonly AskSource Instance = new();
}

/// <summary>An ownership read (Receiving) or claim (Verified) could not reach a majority: try again (IncomingOwnership).</summary>
internal sealed record RetryOwnership : INoSerializationVerificationNeeded
{
    public static readonly RetryOwnership Instance = new();
}

/// <summary>The injected hold:setup is over: acknowledge the prepare now.</summary>
internal sealed record HoldSetupOver(PrepareAck Ack) : INoSerializationVerificationNeeded;

/// <summary>The injected hold:verify is over: announce the verification now.</summary>
internal sealed record HoldVerifyOver(IncomingStats Stats) : INoSerializationVerificationNeeded;

/// <summary>The injected hold:resume is over: claim the guest now.</summary>
internal sealed record HoldResumeOver : INoSerializationVerificationNeeded
{
    public static readonly HoldResumeOver Instance = new();
}
