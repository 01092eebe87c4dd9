using System.Diagnostics.CodeAnalysis;

namespace Migration.Transport.Wire;

/// <summary>
/// A peer broke wire protocol v1 on a channel. The migration fails; the guest stays on the source.
/// The message is the complete error text produced by a TryRead/validator (already prefixed with
/// "channel N: " when the channel is known). <see cref="ChannelIndex"/> is -1 before the channel
/// identified itself (handshake).
/// </summary>
public sealed class ProtocolViolationException : Exception
{
    public ProtocolViolationException(int channelIndex, string message)
        : base(message)
    {
        ChannelIndex = channelIndex;
    }

    public ProtocolViolationException(int channelIndex, string message, Exception inner)
        : base(message, inner)
    {
        ChannelIndex = channelIndex;
    }

    /// <summary>Index of the channel the violation arrived on, or -1 if unknown.</summary>
    public int ChannelIndex { get; }

    /// <summary>Throws a <see cref="ProtocolViolationException"/> with <paramref name="message"/> as its text.</summary>
    [DoesNotReturn]
    public static void Throw(int channelIndex, string message) =>
        throw new ProtocolViolationException(channelIndex, message);

    /// <summary>
    /// Throws when <paramref name="ok"/> is false, e.g.
    /// <c>ThrowIfFalse(PacketHeader.TryRead(bytes, ctx, out var h, out var err), ctx.ChannelIndex, err);</c>
    /// </summary>
    public static void ThrowIfFalse([DoesNotReturnIf(false)] bool ok, int channelIndex, string error)
    {
        if (!ok)
        {
            Throw(channelIndex, error);
        }
    }
}
