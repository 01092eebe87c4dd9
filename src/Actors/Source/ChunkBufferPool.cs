using System.Buffers;

namespace Migration.Actors.Source;

/// <summary>
/// The node's pool for source-side device chunk buffers. The SentChunkLedger keeps every chunk until the destination
/// credits it (to resend it if its channel is lost), so up to the device budget plus every saver's read-ahead is out
/// at once: more buffers of one size than ArrayPool&lt;byte&gt;.Shared keeps (32 per core), and every one it could not
/// keep would be garbage. This pool keeps up to <see cref="MaxBuffersPerSize"/> per size, so a node holds, between
/// migrations, about as many chunk buffers as its busiest migration had out at once (e.g. 64 MiB budget + 8 chunks of
/// read-ahead of 1 MiB = 72 MiB), and the next migration allocates none. Thread-safe (savers rent, the coordinator returns).
/// </summary>
public static class ChunkBufferPool
{
    public const int MaxBuffersPerSize = 256;

    public static ArrayPool<byte> Shared { get; } = ArrayPool<byte>.Create(maxArrayLength: 64 << 20, maxArraysPerBucket: MaxBuffersPerSize);
}
