using Migration.Actors.Messages;

namespace Migration.Actors.Source;

/// <summary>
/// Where each channel of a migration stands, by connection number (the number its SendChannel put in the hello; every
/// attempt has a new one), and what the coordinator must do on each event. Per channel: Up is the connection in the
/// rotation; Lost the connection whose loss waits for the destination's ChannelResume of that same connection
/// (Recovered once applied); Back a newer connection, ready, that joins the rotation once Lost is recovered. A resume or
/// a loss of any other connection is stale and changes nothing: an attempt that timed out at the source may have been
/// accepted by the destination, which reports its end too, possibly after a newer connection is up.
/// Pure bookkeeping (no actors, no I/O). Owned by the MigrationCoordinator; used only on its thread.
/// </summary>
public sealed class ChannelLinks
{
    private readonly Link[] _links;

    public ChannelLinks(int channels)
    {
        _links = new Link[channels];
        for (var i = 0; i < channels; i++)
        {
            _links[i] = new Link();
        }
    }

    public enum LossAction
    {
        /// <summary>Not the connection in the rotation (a newer one that carried nothing, or a stale report).</summary>
        None,

        /// <summary>The channel leaves the rotation; recover when the destination's resume of this connection arrives.</summary>
        AwaitResume,

        /// <summary>The channel leaves the rotation; the destination's resume is already here: recover now.</summary>
        Recover,
    }

    public enum ResumeAction
    {
        /// <summary>A connection this side gave up on or already recovered: ignore.</summary>
        Stale,

        /// <summary>The lost connection's resume: recover now.</summary>
        Recover,

        /// <summary>The connection still in the rotation: the destination noticed first; close it here (recover on its loss).</summary>
        CloseUp,
    }

    /// <summary>The first connection of the channel is up (setup).</summary>
    public void Connected(int channel, ushort connection) => _links[channel] = new Link { Up = connection };

    public bool IsLost(int channel) => _links[channel].Lost is not null;

    public LossAction OnLost(int channel, ushort connection)
    {
        var link = _links[channel];
        if (link.Up == connection)
        {
            link.Up = null;
            link.Lost = connection;
            link.Recovered = false;
            return link.Resume?.Connection == connection ? LossAction.Recover : LossAction.AwaitResume;
        }

        if (link.Back == connection)
        {
            // Ready but never in the rotation: it carried nothing, there is nothing to recover.
            link.Back = null;
        }

        return LossAction.None;
    }

    public ResumeAction OnResume(ChannelResume resume)
    {
        var link = _links[resume.Channel];
        if (link.Lost == resume.Connection && !link.Recovered)
        {
            link.Resume = resume;
            return ResumeAction.Recover;
        }

        if (link.Up == resume.Connection)
        {
            link.Resume = resume;
            return ResumeAction.CloseUp;
        }

        return ResumeAction.Stale;
    }

    /// <summary>The resume of the lost connection (after <see cref="LossAction.Recover"/> or <see cref="ResumeAction.Recover"/>).</summary>
    public ChannelResume ResumeOf(int channel) =>
        _links[channel].Resume ?? throw new InvalidOperationException($"channel {channel}: no resume for the lost connection");

    /// <summary>The lost connection's losses were resent; a ready connection may now join.</summary>
    public void Recovered(int channel) => _links[channel].Recovered = true;

    /// <summary>A newer connection of the channel is up; it joins once the loss is recovered.</summary>
    public void OnReady(int channel, ushort connection) => _links[channel].Back = connection;

    /// <summary>
    /// If a ready connection can join the rotation now (the loss is recovered): makes it the channel's Up connection and
    /// returns true with the Sync the old connection delivered through (the new one sends the Syncs after it first).
    /// </summary>
    public bool TryJoin(int channel, out ushort connection, out uint deliveredThrough)
    {
        var link = _links[channel];
        if (link.Back is not { } back || link.Lost is null || !link.Recovered)
        {
            connection = 0;
            deliveredThrough = 0;
            return false;
        }

        connection = back;
        deliveredThrough = link.Resume!.DeliveredThroughIteration;
        _links[channel] = new Link { Up = back };
        return true;
    }

    private sealed class Link
    {
        public ushort? Up { get; set; }
        public ushort? Lost { get; set; }
        public bool Recovered { get; set; }
        public ushort? Back { get; set; }
        public ChannelResume? Resume { get; set; }
    }
}
