using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Actors.Source;

/// <summary>
/// Losing a channel before the stop (docs/architecture.md, "Losing a channel before the stop"; docs/protocol.md,
/// "Reconnect"): takes a lost connection out of the rotation, resends what it may have lost once the destination said
/// what it delivered, and lets the channel's newer connection join. Which connection of a channel an event is about is
/// decided by <see cref="ChannelLinks"/>; this class acts on its answers.
/// Threading: part of <see cref="SourceTransfer"/>, called only on the coordinator's thread; the reconnect timers are
/// the coordinator's (their ReconnectTimedOut comes back to it).
/// </summary>
internal sealed class ChannelRecovery
{
    private readonly Guid _id;
    private readonly TransferState _state;
    private readonly ChannelLinks _links;
    private readonly IReadOnlyList<IActorRef> _channels;
    private readonly MigrationSettings _settings;
    private readonly ITimerScheduler _timers;
    private readonly ILoggingAdapter _log;
    private readonly SourceTransfer _transfer;
    private readonly ISourceTransferEvents _events;

    public ChannelRecovery(Guid id, TransferState state, ChannelLinks links, IReadOnlyList<IActorRef> channels, MigrationSettings settings,
        ITimerScheduler timers, ILoggingAdapter log, SourceTransfer transfer, ISourceTransferEvents events)
    {
        _id = id;
        _state = state;
        _links = links;
        _channels = channels;
        _settings = settings;
        _timers = timers;
        _log = log;
        _transfer = transfer;
        _events = events;
    }

    /// <summary>Connections lost and reconnected (the report's channelReconnects).</summary>
    public int Reconnects { get; private set; }

    /// <summary>Pages marked dirty again because a lost connection may have lost them.</summary>
    public long ResentPages { get; private set; }

    /// <summary>Device chunks resent because a lost connection took them with it.</summary>
    public long ResentChunks { get; private set; }

    /// <summary>
    /// A connection broke before the guest stopped (the coordinator calls this only in precopy and switchover-ack, with
    /// reconnect on and no channel failed): the channel leaves the rotation and reconnects; the destination's
    /// ChannelResume for that connection says what it delivered, from which the pages it may have lost are marked
    /// dirty again and the chunks it lost are resent.
    /// </summary>
    public void OnLost(ChannelLost l)
    {
        var action = _links.OnLost(l.Index, l.Connection);
        if (action != ChannelLinks.LossAction.None)
        {
            _log.Warning("migration {0}: channel {1} lost connection {2} ({3}); reconnecting", _id, l.Index, l.Connection, l.Reason);
            Reconnects++;
            _events.ChannelReconnecting(l.Index, l.Reason);
            _state.ChannelDown(l.Index);
            _timers.StartSingleTimer($"reconnect-{l.Index}", new ReconnectTimedOut(l.Index), _settings.ChannelReconnectTimeout);
        }

        // The SendChannel waits to be told: it connects again in any case (a connection that was not in the rotation
        // carried nothing, and the channel is still needed).
        _channels[l.Index].Tell(new Reconnect(_settings.ChannelReconnectTimeout));
        if (action == ChannelLinks.LossAction.Recover)
        {
            Recover(l.Index);
        }

        _transfer.Pump();
    }

    /// <summary>
    /// The destination took a connection of the channel down and says what it delivered: recover the lost connection,
    /// close the one still in use (the destination noticed first; recovery follows its loss), or ignore a stale one.
    /// </summary>
    public void OnResume(ChannelResume r)
    {
        var devices = _state.Info.Length;
        if (PeerReplies.ChannelResumeProblem(r, devices) is { } bad)
        {
            _events.ProtocolViolation(bad);
            return;
        }

        if (r.MigrationId != _id || r.Channel < 0 || r.Channel >= _channels.Count || r.Devices.Length != devices)
        {
            _events.ProtocolViolation($"channel resume for channel {r.Channel} with {r.Devices.Length} device receipts " +
                                      $"(expected a channel below {_channels.Count} and {devices} receipts)");
            return;
        }

        switch (_links.OnResume(r))
        {
            case ChannelLinks.ResumeAction.Recover:
                Recover(r.Channel);
                _transfer.Pump();
                break;
            case ChannelLinks.ResumeAction.CloseUp:
                _channels[r.Channel].Tell(KillConnection.Instance);
                break;
            default:
                _log.Debug("migration {0}: ignored the resume of connection {1} of channel {2} (not the one in use or being recovered)", _id, r.Connection, r.Channel);
                break;
        }
    }

    /// <summary>A newer connection of a lost channel is up; it joins the rotation once the loss was recovered.</summary>
    public void OnBack(ChannelReady r)
    {
        _links.OnReady(r.Index, r.Connection);
        TryJoin(r.Index);
    }

    /// <summary>Both sides know the connection is lost: resend what it may have lost.</summary>
    private void Recover(int channel)
    {
        var resume = _links.ResumeOf(channel);
        _links.Recovered(channel);
        var pages = _state.Log.Redirty(channel, resume.DeliveredThroughIteration);
        var lost = _state.Ledger.TakeLost(channel, resume.Devices);
        _state.Resend(lost);
        ResentPages += pages;
        ResentChunks += lost.Count;
        _log.Info("migration {0}: channel {1} connection {2} delivered through iteration {3}; {4} pages marked dirty again, {5} device chunks to resend",
            _id, channel, resume.Connection, resume.DeliveredThroughIteration, pages, lost.Count);
        TryJoin(channel);

        // The old connection delivered this iteration's Sync, though its JobDone may have been lost with it: the
        // channel has finished the iteration (the new connection starts after that Sync).
        _transfer.SyncedByRecovery(channel, resume.DeliveredThroughIteration);
    }

    private void TryJoin(int channel)
    {
        if (!_links.TryJoin(channel, out var connection, out var delivered))
        {
            return;
        }

        _timers.Cancel($"reconnect-{channel}");
        _state.ChannelUp(channel, delivered);
        _log.Info("migration {0}: channel {1} reconnected (connection {2})", _id, channel, connection);
        _transfer.Pump();
    }
}

/// <summary>A lost channel did not come back within channel-reconnect-timeout (the coordinator fails the migration).</summary>
internal sealed record ReconnectTimedOut(int Channel) : INoSerializationVerificationNeeded;
