using Akka.Actor;
using Akka.DistributedData;
using Akka.Event;

namespace Migration.Actors.Ownership;

/// <summary>What a claimant asks of the ownership record (<see cref="OwnershipClaim"/>).</summary>
public enum ClaimKind
{
    /// <summary>Only read the entry with ReadMajority (the answer's Current).</summary>
    Read = 1,

    /// <summary>A destination resuming a migrated guest: win epoch Expected + 1 only if the entry is still Expected
    /// (the source has not taken the guest back since the migration started).</summary>
    IfUnchanged = 2,

    /// <summary>A source taking its stopped guest back because the hand-over failed (the destination was removed, or
    /// discarded its copy): win epoch max(read, Expected) + 2, whatever the entry says now.</summary>
    TakeBack = 3,

    /// <summary>A node that holds a copy it may no longer own (a new incarnation adopting the previous one's guests, or a
    /// source whose coordinator died): win epoch current + 2 naming itself only if the entry read names this node or
    /// nothing; Refused (with the entry) if it names another node, which then owns the guest.</summary>
    Reclaim = 4,
}

public enum ClaimOutcome
{
    Invalid = 0,

    /// <summary>A majority confirmed the entry naming the claimant at the new epoch (or, for Read, the entry was read).</summary>
    Won = 1,

    /// <summary>The entry changed since Expected: someone else holds a newer epoch. The claimant must not run the guest.</summary>
    Refused = 2,

    /// <summary>No majority answered within the timeout: nothing is decided; ask again later, and run nothing meanwhile.</summary>
    NoMajority = 3,
}

/// <summary>The answer of an <see cref="OwnershipClaim"/> to its parent. <paramref name="Current"/> is the entry read (Read,
/// Refused) or written (Won).</summary>
public sealed record ClaimResult(string VmId, ClaimKind Kind, ClaimOutcome Outcome, GuestEpoch Current, string Detail) : INoSerializationVerificationNeeded;

/// <summary>
/// One read-or-claim of a guest's entry in the <see cref="OwnershipRecord"/>: ReadMajority, decide from the entry read,
/// then WriteMajority of the new epoch; tells its parent one <see cref="ClaimResult"/> and stops. A short-lived child, so
/// that the coordinator and the incoming migration keep their own mailboxes free of Replicator replies. The Replicator
/// answers to this actor only; its state is touched on its own thread.
/// </summary>
public sealed class OwnershipClaim : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _vmId;
    private readonly ClaimKind _kind;
    private readonly GuestEpoch _expected;
    private readonly string _self;
    private readonly TimeSpan _timeout;
    private GuestEpoch _next;

    public OwnershipClaim(string vmId, ClaimKind kind, GuestEpoch expected, string self, TimeSpan timeout)
    {
        _vmId = vmId;
        _kind = kind;
        _expected = expected;
        _self = self;
        _timeout = timeout;
        Receive<GetSuccess>(g => Decide(OwnershipRecord.Of(g.Get(OwnershipRecord.Key), _vmId)));
        Receive<NotFound>(_ => Decide(GuestEpoch.None));
        Receive<GetFailure>(_ => Reply(ClaimOutcome.NoMajority, GuestEpoch.None, $"no majority answered a read within {_timeout.TotalSeconds:0.#} s"));
        Receive<UpdateSuccess>(_ => Reply(ClaimOutcome.Won, _next, $"a majority confirmed {_next}"));
        Receive<ModifyFailure>(f => Reply(ClaimOutcome.Refused, GuestEpoch.None, f.ErrorMessage));
        Receive<UpdateTimeout>(_ => Reply(ClaimOutcome.NoMajority, _next, $"no majority confirmed {_next} within {_timeout.TotalSeconds:0.#} s"));
        Receive<IUpdateResponse>(r => Reply(ClaimOutcome.NoMajority, _next, $"the write of {_next} failed: {r.GetType().Name}"));
    }

    /// <param name="self">The claimant's node address (the owner it writes).</param>
    public static Props Props(string vmId, ClaimKind kind, GuestEpoch expected, string self, TimeSpan timeout) =>
        Akka.Actor.Props.Create(() => new OwnershipClaim(vmId, kind, expected, self, timeout));

    protected override void PreStart() =>
        DistributedData.Get(Context.System).Replicator.Tell(Dsl.Get(OwnershipRecord.Key, new ReadMajority(_timeout)));

    private void Decide(GuestEpoch current)
    {
        switch (_kind)
        {
            case ClaimKind.Read:
                Reply(ClaimOutcome.Won, current, $"read {current}");
                return;
            case ClaimKind.IfUnchanged when current == _expected:
                _next = new GuestEpoch(_expected.Epoch + 1, _self);
                break;
            case ClaimKind.IfUnchanged when current.Owner == _self && current.Epoch == _expected.Epoch + 1:
                // Our own earlier claim (it reached some replicas but no majority in time): confirm it again.
                _next = current;
                break;
            case ClaimKind.IfUnchanged:
                Reply(ClaimOutcome.Refused, current, $"the record is {current}, not {_expected} as when the migration started");
                return;
            case ClaimKind.Reclaim when current.IsNone || current.Owner == _self:
                // + 2, as a take-back: outranks a destination's claim of the entry read + 1 that reached no majority.
                _next = new GuestEpoch(current.Epoch + 2, _self);
                break;
            case ClaimKind.Reclaim:
                Reply(ClaimOutcome.Refused, current, $"the record is {current}: another node owns the guest");
                return;
            case ClaimKind.TakeBack:
                // Always two above what was read (and above Expected + 2): the read may miss a destination's claim of
                // current + 1 that reached some replicas but no majority, and only a higher epoch wins the merge with it.
                // (Keeping an entry that already names this node, as before, let such a partial claim outrank the take-back.)
                _next = new GuestEpoch(Math.Max(current.Epoch, _expected.Epoch) + 2, _self);
                break;
        }

        var expectedNow = current;
        DistributedData.Get(Context.System).Replicator.Tell(
            OwnershipRecord.SetIf(Akka.Cluster.Cluster.Get(Context.System).SelfUniqueAddress, _vmId, expectedNow, _next, new WriteMajority(_timeout), null));
    }

    private void Reply(ClaimOutcome outcome, GuestEpoch current, string detail)
    {
        if (outcome != ClaimOutcome.Won)
        {
            _log.Warning("ownership of {0} ({1}): {2}: {3}", _vmId, _kind, outcome, detail);
        }

        Context.Parent.Tell(new ClaimResult(_vmId, _kind, outcome, current, detail));
        Context.Stop(Self);
    }
}
