using Migration.Actors.Source;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>How many chunk buffers the source fills the node's pool with when its transfer starts.</summary>
public sealed class SourceChunkBuffersTests
{
    private const int MiB = 1 << 20;

    [Theory]
    // Two 256 MiB devices, the defaults: the whole budget in flight plus 8 read ahead per device.
    [InlineData(64L * MiB, MiB, 8, new[] { 256L * MiB, 256L * MiB }, 80L * MiB)]
    // A 4 MiB device: at most its 4 chunks in flight (awaiting credit) plus at most its 4 read ahead, whatever the budget
    // and the read-ahead (its precopy chunks may still await credit while its stop-copy chunks are read: 8, not 4).
    [InlineData(64L * MiB, MiB, 8, new[] { 4L * MiB }, 8L * MiB)]
    // A state that is not a whole number of chunks counts its last, shorter chunk as one.
    [InlineData(64L * MiB, MiB, 8, new[] { 3L * MiB + 1 }, 8L * MiB)]
    // 64 MiB chunks: one chunk of budget in flight, 4 read ahead per 256 MiB device.
    [InlineData(64L * MiB, 64 * MiB, 8, new[] { 256L * MiB, 256L * MiB }, 9L * 64 * MiB)]
    // A device without state takes no buffer; a structured device of a few bytes takes one.
    [InlineData(64L * MiB, MiB, 8, new[] { 0L, 100L }, 2L * MiB)]
    public void The_pool_is_filled_for_the_chunks_a_source_can_have_out_at_once_each_part_capped_by_the_devices_state(
        long budget, int chunk, int readAhead, long[] states, long expected) =>
        Assert.Equal(expected, SourceSetup.ChunkBuffersOut(budget, chunk, readAhead, states));
}
