using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Migration.Actors.Infrastructure;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Migration.Transport.Channels;

namespace Migration.Actors.Source;

/// <summary>
/// What the parts of one source migration share: who and what it migrates (written once, at creation), the phase it
/// is in, and the children and engine the setup created (each set once, by <see cref="SourceSetup"/> at the prepare
/// acknowledgement and at precopy start). Plain data, no decisions.
/// Threading: owned by the MigrationCoordinator; read and written only on its thread, by it and the collaborators it
/// owns (SourceSetup, StopCopySequence, SourceCommit, PreCommitHandlers, SourceEnding, SourceProgress).
/// </summary>
internal sealed class SourceRun
{
    public SourceRun(Guid id, GuestVm guest, string destinationNode, string sourceNode, MigrationSettings settings, ChannelTls? tls,
        ILoggingAdapter log)
    {
        Id = id;
        Guest = guest;
        DestinationNode = destinationNode;
        SourceNode = sourceNode;
        Settings = settings;
        Tls = tls;
        Log = log;
    }

    public Guid Id { get; }

    public GuestVm Guest { get; }

    public string DestinationNode { get; }

    public string SourceNode { get; }

    public MigrationSettings Settings { get; }

    /// <summary>This node's channel certificate (null: it has none; a destination that requires TLS is refused).</summary>
    public ChannelTls? Tls { get; }

    public ILoggingAdapter Log { get; }

    /// <summary>Started when the coordinator is created: every millisecond figure of the migration is on it.</summary>
    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    public MigrationStats Stats { get; } = new();

    /// <summary>The phase the coordinator's state is for; set only by the coordinator's Enter.</summary>
    public SourcePhase Phase { get; set; } = SourcePhase.Setup;

    /// <summary>The end status ("completed", "failed", "cancelled") once Ended.</summary>
    public string EndStatus { get; set; } = "";

    /// <summary>The phase's user-visible name (progress, reports, replies): the state's, never compared.</summary>
    public string PhaseName => Phase.Name(EndStatus);

    /// <summary>The iteration being sent (0 before precopy).</summary>
    public uint Iteration => Transfer?.Iteration ?? 0;

    /// <summary>The destination's incoming migration (Nobody until the prepare acknowledgement).</summary>
    public IActorRef Incoming { get; set; } = ActorRefs.Nobody;

    public PrepareAck? Ack { get; set; }

    /// <summary>When precopy started (the end of setup), in ms on <see cref="Clock"/>.</summary>
    public double SetupMs { get; set; }

    /// <summary>The send channels (children), one per connection, from the prepare acknowledgement.</summary>
    public IActorRef[] Channels { get; set; } = [];

    public ChannelLinks Links { get; set; } = new(0);

    /// <summary>The device savers (children), one per device, from precopy start.</summary>
    public IActorRef[] Savers { get; set; } = [];

    /// <summary>The migration's worker pool for device calls: created at precopy start, disposed in PostStop.</summary>
    public WorkerPool? Pool { get; set; }

    /// <summary>The transfer engine, from precopy start (null before).</summary>
    public SourceTransfer? Transfer { get; set; }

    public SourceRamDigests? SegmentDigests { get; set; }

    /// <summary>The guest was handed over (GuestHandedOver told to the node) and not taken back since.</summary>
    public bool CommitSent { get; set; }

    /// <summary>Hands out jobs (the transfer engine raises what follows in its stage); nothing to pump before precopy.</summary>
    public void Pump() => Transfer?.Pump();

    /// <summary>Tells every device saver <paramref name="message"/>.</summary>
    public void TellSavers(object message)
    {
        foreach (var s in Savers)
        {
            s.Tell(message);
        }
    }

    /// <summary>Fires the injected faults of a phase ("precopy" at iteration 1, "stopcopy" after the stop).</summary>
    public void InjectFaults(string phase)
    {
        foreach (var f in Settings.Inject.Where(f => f.Phase == phase))
        {
            Log.Warning("migration {0}: injecting {1} in {2}", Id, f.Kind, phase);
            var channel = Channels[Math.Min(f.Channel, Channels.Length - 1)];
            channel.Tell(f.Kind == FaultInjection.DropChannel ? KillConnection.Instance : CorruptNextPacket.Instance);
        }
    }
}
