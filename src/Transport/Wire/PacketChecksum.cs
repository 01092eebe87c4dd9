using System.IO.Hashing;

namespace Migration.Transport.Wire;

/// <summary>
/// The packet checksum of wire protocol v1: the low 32 bits of XxHash3-64 (seed 0) over the packet's
/// <b>checked bytes</b>, appended in wire order:
/// <list type="bullet">
/// <item>RAM: the 24-byte <see cref="RamPacketHeader"/> + the page-offset array, + the payload only when the
/// codec is not <c>None</c>. Raw pages of an uncompressed packet are NOT covered: they are sent zero-copy from
/// guest memory while the guest runs and may change under the send; the end-to-end RAM digests cover them.</item>
/// <item>DeviceState: the 24-byte <see cref="DeviceChunkHeader"/> + the chunk payload.</item>
/// <item>Sync / End: their whole body.</item>
/// </list>
/// The 16-byte <see cref="PacketHeader"/> is never covered.
/// <para>
/// Ownership and threading: one instance per channel direction, used by one thread at a time. It wraps one
/// reusable <see cref="XxHash3"/>; <see cref="Finish"/> returns the value and resets, so no allocation happens
/// per packet.
/// </para>
/// </summary>
public sealed class PacketChecksum
{
    private readonly XxHash3 hasher = new(seed: 0);

    /// <summary>Adds the next checked bytes of the current packet.</summary>
    public void Append(ReadOnlySpan<byte> checkedBytes) => hasher.Append(checkedBytes);

    /// <summary>Returns the checksum of everything appended since the last Finish/Reset, then resets.</summary>
    public uint Finish()
    {
        uint value = (uint)hasher.GetCurrentHashAsUInt64();
        hasher.Reset();
        return value;
    }

    /// <summary>Discards everything appended (e.g. after an aborted packet).</summary>
    public void Reset() => hasher.Reset();

    /// <summary>One-shot checksum of contiguous checked bytes (no allocation).</summary>
    public static uint Compute(ReadOnlySpan<byte> checkedBytes) => (uint)XxHash3.HashToUInt64(checkedBytes);

    /// <summary>
    /// Appends the checked parts of a RAM packet in order, per the coverage rule above; returns the checksum.
    /// <paramref name="payload"/> is ignored when <paramref name="header"/>'s codec is None.
    /// Anything appended before is discarded.
    /// </summary>
    public uint ComputeRam(in RamPacketHeader header, ReadOnlySpan<byte> offsetBytes, ReadOnlySpan<byte> payload)
    {
        hasher.Reset();
        Span<byte> head = stackalloc byte[RamPacketHeader.Size];
        header.WriteTo(head);
        Append(head);
        Append(offsetBytes);
        if (header.Codec != Codecs.CodecId.None)
        {
            Append(payload);
        }

        return Finish();
    }

    /// <summary>Checksum of a device chunk's header and payload. Anything appended before is discarded.</summary>
    public uint ComputeDevice(in DeviceChunkHeader header, ReadOnlySpan<byte> payload)
    {
        hasher.Reset();
        Span<byte> head = stackalloc byte[DeviceChunkHeader.Size];
        header.WriteTo(head);
        Append(head);
        Append(payload);
        return Finish();
    }
}
