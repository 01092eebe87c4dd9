namespace Migration.Transport.Channels;

/// <summary>
/// Told by a destination receive loop which guest pages a RAM packet wrote, once the packet's pages are in guest
/// memory (normal pages received or decompressed, zero pages checked or cleared). Called on the receive loop, once per
/// RAM packet, concurrently from every channel of the migration: implementations must be thread-safe and cheap.
/// </summary>
public interface IRamWriteObserver
{
    /// <param name="blockIndex">The packet's block, validated against the migration's block table.</param>
    /// <param name="pageOffsets">The packet's page offsets in bytes, validated: aligned, inside the block, normal pages then zero pages, each list strictly ascending.</param>
    /// <param name="normalPages">How many of the offsets, the first ones, carried content (the rest were zero pages).</param>
    void OnPagesWritten(int blockIndex, ReadOnlySpan<ulong> pageOffsets, int normalPages);
}
