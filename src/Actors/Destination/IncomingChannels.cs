using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Actors.Destination;

/// <summary>
/// The receive channels of one incoming migration: one RecvChannel child per accepted connection, by channel index,
/// and the channels whose connection broke before the stop, waiting to reconnect (which chunks every gate holds of
/// them, then ChannelResume to the source and ReleaseChannel to the listener). Owns the "connect" timer (every channel
/// connects in time) and a "reconnect-N" timer per lost channel; both end in an <see cref="IncomingTimeout"/>.
/// Threading: owned by the IncomingMigration and called only on its thread, with its actor context (the channels are
/// its children and report to <c>owner</c>) and its timers.
/// </summary>
internal sealed class IncomingChannels
{
    /// <summary>The key of the timer that bounds the wait for every channel (an injected hold:setup cancels it and restarts it).</summary>
    public const string ConnectTimer = "connect";

    private readonly Guid _id;
    private readonly MigrationSettings _settings;
    private readonly IActorContext _context;
    private readonly IActorRef _owner;
    private readonly ITimerScheduler _timers;
    private readonly ILoggingAdapter _log;
    private readonly IncomingResources _resources;
    private readonly IActorRef _source;
    private readonly IActorRef _listener;
    private readonly IActorRef?[] _channels;
    private readonly Dictionary<int, LostChannel> _lost = new();
    private int _generation;

    /// <param name="owner">The IncomingMigration (the channels' parent and the receiver of their reports).</param>
    public IncomingChannels(Guid id, MigrationSettings settings, IActorContext context, IActorRef owner, ITimerScheduler timers, ILoggingAdapter log,
        IncomingResources resources, IActorRef source, IActorRef listener)
    {
        _id = id;
        _settings = settings;
        _context = context;
        _owner = owner;
        _timers = timers;
        _log = log;
        _resources = resources;
        _source = source;
        _listener = listener;
        _channels = new IActorRef?[settings.Channels];
    }

    /// <summary>Gives the source connect-timeout (+10 s) from now to connect every channel.</summary>
    public void StartConnectTimer() =>
        _timers.StartSingleTimer(ConnectTimer, new IncomingTimeout("waiting for channels"), _settings.ConnectTimeout + TimeSpan.FromSeconds(10));

    /// <summary>An authenticated connection: starts its RecvChannel, or closes it if its index is taken or out of range.</summary>
    public void Accept(ChannelAccepted c)
    {
        if (c.Index >= _channels.Length || _channels[c.Index] is not null)
        {
            c.Io.Dispose();
            return;
        }

        // A reconnected channel starts one past the last Sync its old connection delivered.
        uint first = 1;
        if (_lost.Remove(c.Index, out var lost))
        {
            first = lost.Delivered + 1;
            _timers.Cancel($"reconnect-{c.Index}");
            _log.Info("incoming migration {0}: channel {1} reconnected as connection {2} (resuming at iteration {3})", _id, c.Index, c.Connection, first);
        }

        var r = _resources;
        _channels[c.Index] = _context.ActorOf(RecvChannel.Props(c.Index, c.Io, r.Limits, r.Guest!.Blocks, _settings.Codec, _settings.CodecLevel,
            r.Gates, r.Budget, _owner, _settings.ChannelIdleTimeout, first, c.Connection, r.RamTracker), $"channel-{c.Index}-{++_generation}");
        if (_channels.All(x => x is not null))
        {
            _timers.Cancel(ConnectTimer);
        }
    }

    /// <summary>
    /// A channel's connection broke and its receive loop has ended (nothing of it touches RAM or the budget any more);
    /// the caller decided to wait for a reconnect. Asks every gate which chunks it holds (each gate's mailbox already has
    /// every chunk that loop read), then tells the source what the old connection delivered and lets the listener
    /// accept the channel again.
    /// </summary>
    public void AwaitReconnect(RecvChannelLost l)
    {
        _log.Warning("incoming migration {0}: {1}; waiting for the source to reconnect the channel", _id, l.Reason);
        if (_channels[l.Channel] is { } old)
        {
            _context.Stop(old);
        }

        _channels[l.Channel] = null;
        var gates = _resources.Gates;
        var lost = new LostChannel(l.Connection, l.DeliveredThroughIteration, new DeviceReceipt?[gates.Length]);
        _lost[l.Channel] = lost;
        _timers.StartSingleTimer($"reconnect-{l.Channel}", new IncomingTimeout($"waiting for channel {l.Channel} to reconnect ({l.Reason})"),
            _settings.ChannelReconnectTimeout + TimeSpan.FromSeconds(2));
        foreach (var g in gates)
        {
            g.Tell(new GetGateReceipt(l.Channel));
        }

        TryResume(l.Channel, lost);
    }

    /// <summary>A gate's answer to GetGateReceipt for a lost channel (the first answer per device counts).</summary>
    public void OnReceipt(GateReceipt r)
    {
        if (_lost.TryGetValue(r.Channel, out var lost) && lost.Receipts[r.DeviceIndex] is null)
        {
            lost.Receipts[r.DeviceIndex] = new DeviceReceipt(r.Next, r.Held);
            TryResume(r.Channel, lost);
        }
    }

    private void TryResume(int channel, LostChannel lost)
    {
        if (lost.Resumed || lost.Receipts.Any(x => x is null))
        {
            return;
        }

        lost.Resumed = true;
        _source.Tell(new ChannelResume(_id, channel, lost.Connection, lost.Delivered, lost.Receipts.Select(x => x!).ToArray()));
        _listener.Tell(new ReleaseChannel(_id, channel));
    }

    private sealed class LostChannel(ushort connection, uint delivered, DeviceReceipt?[] receipts)
    {
        public ushort Connection { get; } = connection;
        public uint Delivered { get; } = delivered;
        public DeviceReceipt?[] Receipts { get; } = receipts;
        public bool Resumed { get; set; }
    }
}
