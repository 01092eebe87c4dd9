using System.Buffers.Binary;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace Migration.Actors.Messages;

/// <summary>
/// Carries <see cref="DeviceCredit"/>, the one control-plane message sent per batch of loaded device chunks (hundreds
/// per migration with devices), in a fixed 57-byte layout instead of Hyperion's self-describing one (337 bytes on the
/// wire and about 1.9 KB of allocation per message to write it, as much again to read it). Bound to the exact type in
/// hocon/cluster.conf; every other message stays with Hyperion. Layout (little endian, docs/protocol.md
/// "DeviceCredit on the control plane"):
/// <code>
/// 0  version (1)    1  migration id (16, Guid.TryWriteBytes)   17 device index (i32)   21 bytes (i64)
/// 29 first chunk index (i64)   37 load ticks (i64)   45 buffered bytes (i64)   53 chunks (i32)   = 57
/// </code>
/// The reader checks only the frame (length, version); the values are checked by the source before use: the device and
/// the reported figures by PeerReplies.CreditProblem, the range and its bytes by the ledger against what it sent
/// (SentChunkLedger), all or nothing. Stateless and thread-safe.
/// </summary>
public sealed class DeviceCreditSerializer(ExtendedActorSystem system) : Serializer(system)
{
    /// <summary>Akka serializer id of this format (ids 0-40 are Akka's own).</summary>
    public const int Id = 7411;

    public const byte Version = 1;

    public const int Length = 57;

    public override int Identifier => Id;

    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj)
    {
        if (obj is not DeviceCredit c)
        {
            throw new ArgumentException($"DeviceCreditSerializer carries only DeviceCredit, not {obj?.GetType().FullName ?? "null"}", nameof(obj));
        }

        var bytes = new byte[Length];
        Write(c, bytes);
        return bytes;
    }

    public override object FromBinary(byte[] bytes, Type type) => Read(bytes);

    /// <summary>Writes <paramref name="c"/> into the first <see cref="Length"/> bytes of <paramref name="into"/>.</summary>
    public static void Write(DeviceCredit c, Span<byte> into)
    {
        into[0] = Version;
        c.MigrationId.TryWriteBytes(into.Slice(1, 16));
        BinaryPrimitives.WriteInt32LittleEndian(into[17..], c.DeviceIndex);
        BinaryPrimitives.WriteInt64LittleEndian(into[21..], c.Bytes);
        BinaryPrimitives.WriteInt64LittleEndian(into[29..], c.ChunkIndex);
        BinaryPrimitives.WriteInt64LittleEndian(into[37..], c.LoadTicks);
        BinaryPrimitives.WriteInt64LittleEndian(into[45..], c.BufferedBytes);
        BinaryPrimitives.WriteInt32LittleEndian(into[53..], c.Chunks);
    }

    /// <summary>Reads a credit; a frame of another length or version is a <see cref="SerializationException"/> naming both.</summary>
    public static DeviceCredit Read(ReadOnlySpan<byte> frame)
    {
        if (frame.Length != Length)
        {
            throw new SerializationException($"DeviceCredit frame of {frame.Length} bytes, expected {Length}");
        }

        if (frame[0] != Version)
        {
            throw new SerializationException($"DeviceCredit frame version {frame[0]}, expected {Version}");
        }

        return new DeviceCredit(
            new Guid(frame.Slice(1, 16)),
            BinaryPrimitives.ReadInt32LittleEndian(frame[17..]),
            BinaryPrimitives.ReadInt64LittleEndian(frame[21..]),
            BinaryPrimitives.ReadInt64LittleEndian(frame[29..]),
            BinaryPrimitives.ReadInt64LittleEndian(frame[37..]),
            BinaryPrimitives.ReadInt64LittleEndian(frame[45..]),
            BinaryPrimitives.ReadInt32LittleEndian(frame[53..]));
    }
}
