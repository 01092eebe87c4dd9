using Migration.Devices.Ram;

namespace Migration.Transport.Channels;

/// <summary>
/// Contiguous runs of pages in a RAM packet's ascending page offsets: how both ends of a channel decide between moving
/// page data run by run, straight from or into guest memory, and through one staging buffer.
/// </summary>
public static class PageRuns
{
    /// <summary>More runs than this in one packet go through the staging buffer (one copy instead of many small I/Os).</summary>
    public const int MaxDirect = 8;

    /// <summary>
    /// Writes the runs of <paramref name="offsets"/> (byte offsets of pages, ascending) into <paramref name="runs"/>
    /// (at least as long as <paramref name="offsets"/>) as (first page, page count); returns how many there are.
    /// </summary>
    public static int Collect(ReadOnlySpan<ulong> offsets, Span<(long First, int Count)> runs)
    {
        var count = 0;
        for (var i = 0; i < offsets.Length; i++)
        {
            var page = (long)(offsets[i] >> RamBlock.PageShift);
            if (count > 0 && runs[count - 1].First + runs[count - 1].Count == page)
            {
                runs[count - 1].Count++;
            }
            else
            {
                runs[count++] = (page, 1);
            }
        }

        return count;
    }
}
