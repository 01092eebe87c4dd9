using System.Buffers;
using Migration.Transport.Flow;

namespace Migration.Actors.Source;

/// <summary>
/// The source's name for the node's device chunk buffer pool (<see cref="DeviceChunkBuffers"/>, shared with the
/// destination's receive loops so a node keeps one set of chunk buffers). The SentChunkLedger keeps every chunk until
/// the destination credits it, so up to the device budget plus every saver's read-ahead is out at once.
/// </summary>
public static class ChunkBufferPool
{
    public const int MaxBuffersPerSize = DeviceChunkBuffers.MaxBuffersPerSize;

    public static ArrayPool<byte> Shared => DeviceChunkBuffers.Shared;
}
