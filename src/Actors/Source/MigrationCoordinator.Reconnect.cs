using Akka.Actor;
using Akka.Event;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

// Losing a channel before the stop (docs/architecture.md, "Losing a channel before the stop"; docs/protocol.md, "Reconnect").
public sealed partial class MigrationCoordinator
{
    private ChannelLink[] _links = [];
    private int _reconnects;
    private long _resentPages;
    private long _resentChunks;

    /// <summary>
    /// Where one channel stands, by connection number (the number its SendChannel put in the hello; every attempt has a
    /// new one). Up: the connection in the rotation. Lost: the connection whose loss waits for the destination's
    /// ChannelResume of that same connection (Recovered once applied). Back: a newer connection, ready, that joins the
    /// rotation once Lost is recovered. A resume or a loss of any other connection is stale and changes nothing: an
    /// attempt that timed out here may have been accepted there, and the destination reports its end too.
    /// </summary>
    private sealed class ChannelLink
    {
        public ushort? Up { get; set; }
        public ushort? Lost { get; set; }
        public bool Recovered { get; set; }
        public ushort? Back { get; set; }
        public ChannelResume? Resume { get; set; }
    }

    /// <summary>
    /// A connection broke. Before the guest stops this is recoverable: the channel leaves the rotation and reconnects;
    /// the destination's ChannelResume for that connection says what it delivered, from which the pages it may have
    /// lost are marked dirty again and the chunks it lost are resent. After the stop, or with reconnect off, it fails the
    /// migration (the guest resumes here).
    /// </summary>
    private void OnChannelLost(ChannelLost l)
    {
        if (!_settings.ReconnectEnabled || _stopMs >= 0 || _phase is not ("precopy" or "switchover-ack") || _channelFailure is not null)
        {
            Self.Tell(new ChannelFailed(l.Index, l.Reason));
            return;
        }

        var link = _links[l.Index];
        if (link.Up == l.Connection)
        {
            _log.Warning("migration {0}: channel {1} lost connection {2} ({3}); reconnecting", _id, l.Index, l.Connection, l.Reason);
            _reconnects++;
            link.Up = null;
            link.Lost = l.Connection;
            link.Recovered = false;
            _transfer!.ChannelDown(l.Index);
            Timers.StartSingleTimer($"reconnect-{l.Index}", new ReconnectTimedOut(l.Index), _settings.ChannelReconnectTimeout);
            if (link.Resume?.Connection == l.Connection)
            {
                Recover(l.Index);
            }
        }
        else if (link.Back == l.Connection)
        {
            // Ready but not yet in the rotation: it carried nothing, so there is nothing to recover.
            link.Back = null;
        }

        _channels[l.Index].Tell(new Reconnect(_settings.ChannelReconnectTimeout));
        Pump();
    }

    /// <summary>
    /// The destination took a connection of the channel down and says what it delivered. For the lost connection being
    /// recovered: recover. For the connection in the rotation (the destination noticed first, e.g. nothing was being
    /// sent): close it here too, and recover when that loss is reported. Any other connection: stale, ignored.
    /// </summary>
    private void OnChannelResume(ChannelResume r)
    {
        if (r.MigrationId != _id || r.Channel < 0 || r.Channel >= _channels.Length || r.Devices.Length != _guest.Devices.Count)
        {
            Abort($"destination protocol violation: channel resume for channel {r.Channel} with {r.Devices.Length} device receipts " +
                  $"(expected a channel below {_channels.Length} and {_guest.Devices.Count} receipts)", cancelled: false);
            return;
        }

        var link = _links[r.Channel];
        if (link.Lost == r.Connection && !link.Recovered)
        {
            link.Resume = r;
            Recover(r.Channel);
            Pump();
        }
        else if (link.Up == r.Connection)
        {
            link.Resume = r;
            _channels[r.Channel].Tell(KillConnection.Instance);
        }
        else
        {
            _log.Debug("migration {0}: ignored a resume of connection {1} of channel {2} (up {3}, lost {4})", _id, r.Connection, r.Channel, link.Up, link.Lost);
        }
    }

    /// <summary>Both sides know the connection is lost: resend what it may have lost.</summary>
    private void Recover(int channel)
    {
        var link = _links[channel];
        var resume = link.Resume!;
        link.Recovered = true;
        var t = _transfer!;
        var pages = t.Log.Redirty(channel, resume.DeliveredThroughIteration);
        var lost = t.Ledger.TakeLost(channel, resume.Devices);
        t.Resend(lost);
        _resentPages += pages;
        _resentChunks += lost.Count;
        _log.Info("migration {0}: channel {1} connection {2} delivered through iteration {3}; {4} pages marked dirty again, {5} device chunks to resend",
            _id, channel, resume.Connection, resume.DeliveredThroughIteration, pages, lost.Count);
        TryBringUp(channel);

        // The old connection delivered this iteration's Sync, though its JobDone may have been lost with it: the
        // channel has finished the iteration (the new connection starts after that Sync).
        if (resume.DeliveredThroughIteration >= _iteration && _syncedChannels.Add(channel) && _syncedChannels.Count == _channels.Length)
        {
            OnIterationSynced();
        }
    }

    /// <summary>A connection of a lost channel is up; it joins the rotation once the loss was recovered.</summary>
    private void OnChannelBack(ChannelReady r)
    {
        _links[r.Index].Back = r.Connection;
        TryBringUp(r.Index);
    }

    private void TryBringUp(int channel)
    {
        var link = _links[channel];
        if (link.Back is not { } back || link.Lost is null || !link.Recovered)
        {
            return;
        }

        Timers.Cancel($"reconnect-{channel}");
        _transfer!.ChannelUp(channel, link.Resume!.DeliveredThroughIteration);
        _links[channel] = new ChannelLink { Up = back };
        _log.Info("migration {0}: channel {1} reconnected (connection {2})", _id, channel, back);
        Pump();
    }

    private sealed record ReconnectTimedOut(int Channel) : INoSerializationVerificationNeeded;
}
