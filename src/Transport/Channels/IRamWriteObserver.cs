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

    /// <summary>
    /// A RAM packet's pages with content are about to be received or decompressed into guest memory: called before
    /// the first of their bytes is written, so that a packet cut off half-way (a lost connection) has still announced
    /// every page it may have written. <paramref name="normalPageOffsets"/> are validated like those of OnPagesWritten.
    /// </summary>
    void OnPagesArriving(int blockIndex, ReadOnlySpan<ulong> normalPageOffsets);

    /// <summary>
    /// Whether page <paramref name="page"/> of block <paramref name="blockIndex"/> may hold non-zero bytes now, asked by
    /// a receive loop for each zero page of a packet before it reads the page to clear it. False only when the page is
    /// known zero: fresh (zero-filled) memory that no packet of this migration announced content for
    /// (<see cref="OnPagesArriving"/>); a loop then leaves the page alone, neither read nor written. Announcements of an
    /// earlier iteration are seen: a sync barrier separates iterations. Thread-safe, called concurrently.
    /// </summary>
    bool MayHoldData(int blockIndex, long page);
}
