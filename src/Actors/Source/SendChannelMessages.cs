using Akka.Actor;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;

namespace Migration.Actors.Source;

// The messages between a SendChannel, its coordinator and its sender thread, and the channel's spec.

/// <summary>Where and how a send channel connects; <paramref name="EarlyAbort"/>: the destination takes raw RAM packets under the codec.</summary>
public sealed record ChannelSpec(
    int Index, int Count, Guid MigrationId, string Host, int Port, byte[] Token, TimeSpan ConnectTimeout,
    CodecId Codec, int CodecLevel, bool ZeroPageDetection, int PacketPages, int QueueDepth, ChannelTls? Tls = null, bool EarlyAbort = false);

/// <summary>Channel -> coordinator: connection <paramref name="Connection"/> (its number in the hello) is up and authenticated.</summary>
public sealed record ChannelReady(int Index, ushort Connection = 0) : INoSerializationVerificationNeeded;

/// <summary>Channel -> coordinator: the connection failed; the channel accepts no more work.</summary>
public sealed record ChannelFailed(int Index, string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Channel -> coordinator: the connection broke; the channel closed it and cancelled its stream. The channel drops
/// jobs until told to <see cref="Reconnect"/>; it reports ChannelReady when it is back, or ChannelFailed if it cannot
/// come back.
/// </summary>
public sealed record ChannelLost(int Index, ushort Connection, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Coordinator -> lost channel: connect again (same token and index), retrying within <paramref name="Within"/>.</summary>
public sealed record Reconnect(TimeSpan Within) : INoSerializationVerificationNeeded;

/// <summary>Test and fault injection: close the channel's socket abruptly.</summary>
public sealed record KillConnection : INoSerializationVerificationNeeded
{
    public static readonly KillConnection Instance = new();
}

/// <summary>Fault injection: corrupt the next packet this channel sends (the destination must detect it).</summary>
public sealed record CorruptNextPacket : INoSerializationVerificationNeeded
{
    public static readonly CorruptNextPacket Instance = new();
}

public enum JobKind
{
    Ram,
    Device,
    Sync,
    End,
}

/// <summary>
/// Channel sender -> coordinator: one job was sent. Reused by the sender that reports it (a ring per connection, see
/// SendJobHandler): read it while handling the message and keep no reference to it.
/// </summary>
public sealed class JobDone : INoSerializationVerificationNeeded
{
    public int Channel { get; private set; }
    public JobKind Kind { get; private set; }
    public int NormalPages { get; private set; }
    public int ZeroPages { get; private set; }
    public long DeviceBytes { get; private set; }
    public long WireBytes { get; private set; }
    public uint Iteration { get; private set; }
    public int DeviceIndex { get; private set; }

    /// <summary>Of <see cref="NormalPages"/>, those sent raw although a codec was negotiated (early abort).</summary>
    public int UncompressedPages { get; private set; }

    internal JobDone Set(int channel, JobKind kind, int normalPages, int zeroPages, long deviceBytes, long wireBytes, uint iteration, int deviceIndex,
        int uncompressedPages = 0)
    {
        (Channel, Kind, NormalPages, ZeroPages, DeviceBytes, WireBytes, Iteration, DeviceIndex, UncompressedPages) =
            (channel, kind, normalPages, zeroPages, deviceBytes, wireBytes, iteration, deviceIndex, uncompressedPages);
        return this;
    }

    public override string ToString() => $"JobDone(channel {Channel}, {Kind}, iteration {Iteration}, {WireBytes} wire bytes)";
}
