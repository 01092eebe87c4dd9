using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

// Losing a channel before the stop (docs/architecture.md, "Losing a channel before the stop"; docs/protocol.md, "Reconnect").
// Which connection of a channel an event is about is decided by ChannelLinks; this part acts on its answers.
public sealed partial class MigrationCoordinator
{
    private ChannelLinks _links = new(0);
    private int _reconnects;
    private long _resentPages;
    private long _resentChunks;

    /// <summary>
    /// A connection broke. Before the guest stops this is recoverable: the channel leaves the rotation and reconnects;
    /// the destination's ChannelResume for that connection says what it delivered, from which the pages it may have
    /// lost are marked dirty again and the chunks it lost are resent. After the stop, or with reconnect off, it fails the
    /// migration (the guest resumes here). Only Precopy and SwitchoverAck handle it; in the other states a lost
    /// connection is a failed channel (Common).
    /// </summary>
    private void OnChannelLost(ChannelLost l)
    {
        if (!_settings.ReconnectEnabled || _channelFailure is not null)
        {
            OnChannelFailed(l.Index, l.Reason);
            return;
        }

        var action = _links.OnLost(l.Index, l.Connection);
        if (action != ChannelLinks.LossAction.None)
        {
            _log.Warning("migration {0}: channel {1} lost connection {2} ({3}); reconnecting", _id, l.Index, l.Connection, l.Reason);
            _reconnects++;
            _timeline.Reconnect(_clock.Elapsed.TotalMilliseconds, l.Index, l.Reason);
            _transfer!.ChannelDown(l.Index);
            Timers.StartSingleTimer($"reconnect-{l.Index}", new ReconnectTimedOut(l.Index), _settings.ChannelReconnectTimeout);
        }

        // The SendChannel waits to be told: it connects again in any case (a connection that was not in the rotation
        // carried nothing, and the channel is still needed).
        _channels[l.Index].Tell(new Reconnect(_settings.ChannelReconnectTimeout));
        if (action == ChannelLinks.LossAction.Recover)
        {
            Recover(l.Index);
        }

        Pump();
    }

    /// <summary>
    /// The destination took a connection of the channel down and says what it delivered: recover the lost connection,
    /// close the one still in use (the destination noticed first; recovery follows its loss), or ignore a stale one.
    /// </summary>
    private void OnChannelResume(ChannelResume r)
    {
        if (PeerReplies.ChannelResumeProblem(r, _guest.Devices.Count) is { } bad)
        {
            Abort($"destination protocol violation: {bad}", cancelled: false);
            return;
        }

        if (r.MigrationId != _id || r.Channel < 0 || r.Channel >= _channels.Length || r.Devices.Length != _guest.Devices.Count)
        {
            Abort($"destination protocol violation: channel resume for channel {r.Channel} with {r.Devices.Length} device receipts " +
                  $"(expected a channel below {_channels.Length} and {_guest.Devices.Count} receipts)", cancelled: false);
            return;
        }

        switch (_links.OnResume(r))
        {
            case ChannelLinks.ResumeAction.Recover:
                Recover(r.Channel);
                Pump();
                break;
            case ChannelLinks.ResumeAction.CloseUp:
                _channels[r.Channel].Tell(KillConnection.Instance);
                break;
            default:
                _log.Debug("migration {0}: ignored the resume of connection {1} of channel {2} (not the one in use or being recovered)", _id, r.Connection, r.Channel);
                break;
        }
    }

    /// <summary>Both sides know the connection is lost: resend what it may have lost.</summary>
    private void Recover(int channel)
    {
        var resume = _links.ResumeOf(channel);
        _links.Recovered(channel);
        var t = _transfer!;
        var pages = t.Log.Redirty(channel, resume.DeliveredThroughIteration);
        var lost = t.Ledger.TakeLost(channel, resume.Devices);
        t.Resend(lost);
        _resentPages += pages;
        _resentChunks += lost.Count;
        _log.Info("migration {0}: channel {1} connection {2} delivered through iteration {3}; {4} pages marked dirty again, {5} device chunks to resend",
            _id, channel, resume.Connection, resume.DeliveredThroughIteration, pages, lost.Count);
        TryJoin(channel);

        // The old connection delivered this iteration's Sync, though its JobDone may have been lost with it: the
        // channel has finished the iteration (the new connection starts after that Sync).
        if (resume.DeliveredThroughIteration >= _iteration && _syncedChannels.Add(channel) && _syncedChannels.Count == _channels.Length)
        {
            OnIterationSynced();
        }
    }

    /// <summary>A newer connection of a lost channel is up; it joins the rotation once the loss was recovered.</summary>
    private void OnChannelBack(ChannelReady r)
    {
        _links.OnReady(r.Index, r.Connection);
        TryJoin(r.Index);
    }

    private void TryJoin(int channel)
    {
        if (!_links.TryJoin(channel, out var connection, out var delivered))
        {
            return;
        }

        Timers.Cancel($"reconnect-{channel}");
        _transfer!.ChannelUp(channel, delivered);
        _log.Info("migration {0}: channel {1} reconnected (connection {2})", _id, channel, connection);
        Pump();
    }

    private sealed record ReconnectTimedOut(int Channel) : INoSerializationVerificationNeeded;
}
