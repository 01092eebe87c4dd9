using Migration.Devices.Ram;

namespace Migration.Actors.Source;

/// <summary>
/// Which pages each channel carried in each iteration the destination has not yet confirmed, so that the pages of a
/// lost connection can be marked dirty again and sent in a later iteration (docs/architecture.md "Losing a channel").
/// One bitmap per (channel, iteration), one bit per page of every block; bitmaps of confirmed iterations are cleared
/// and reused. The destination confirms iteration k (IterationReceived) when every channel delivered Sync(k), so at
/// most a few iterations per channel are ever held: about 32 KiB per GiB of guest RAM each.
/// Owned by the MigrationCoordinator; used only on its thread.
/// </summary>
public sealed class RamSendLog
{
    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly Dictionary<(int Channel, uint Iteration), ulong[][]> _sent = new();
    private readonly Stack<ulong[][]> _free = new();
    private uint _confirmed;

    public RamSendLog(IReadOnlyList<RamBlock> blocks)
    {
        _blocks = blocks;
    }

    /// <summary>Iterations held (all channels), for tests and diagnostics.</summary>
    public int HeldBitmaps => _sent.Count;

    /// <summary>Highest iteration the destination confirmed.</summary>
    public uint Confirmed => _confirmed;

    /// <summary>Records that <paramref name="job"/>'s pages were handed to <paramref name="channel"/>.</summary>
    public void Record(int channel, RamJob job)
    {
        if (job.Iteration <= _confirmed)
        {
            throw new InvalidOperationException($"channel {channel}: pages of iteration {job.Iteration} handed out after the destination confirmed iteration {_confirmed}");
        }

        if (!_sent.TryGetValue((channel, job.Iteration), out var bits))
        {
            bits = Rent();
            _sent.Add((channel, job.Iteration), bits);
        }

        var block = bits[job.BlockIndex];
        for (var i = 0; i < job.Count; i++)
        {
            var page = job.Pages[i];
            block[page >> 6] |= 1UL << (int)(page & 63);
        }
    }

    /// <summary>The destination delivered every page of iterations up to <paramref name="iteration"/>: forget them.</summary>
    public void Confirm(uint iteration)
    {
        if (iteration <= _confirmed)
        {
            return;
        }

        _confirmed = iteration;
        foreach (var key in _sent.Keys.Where(k => k.Iteration <= iteration).ToArray())
        {
            _sent.Remove(key, out var bits);
            Return(bits!);
        }
    }

    /// <summary>
    /// Channel <paramref name="channel"/>'s connection was lost after it delivered Sync(<paramref name="delivered"/>):
    /// marks every page it carried in a later iteration dirty in the guest's bitmaps (so the next iteration sends it
    /// again, after the destination's barrier, where no older copy can overwrite it) and forgets them. Returns the
    /// number of pages marked.
    /// </summary>
    public long Redirty(int channel, uint delivered)
    {
        long pages = 0;
        foreach (var key in _sent.Keys.Where(k => k.Channel == channel && k.Iteration > delivered).ToArray())
        {
            _sent.Remove(key, out var bits);
            for (var b = 0; b < _blocks.Count; b++)
            {
                pages += _blocks[b].Dirty.MarkWords(bits![b]);
            }

            Return(bits!);
        }

        return pages;
    }

    private ulong[][] Rent() => _free.TryPop(out var bits) ? bits : _blocks.Select(b => new ulong[b.Dirty.WordCount]).ToArray();

    private void Return(ulong[][] bits)
    {
        foreach (var b in bits)
        {
            Array.Clear(b);
        }

        _free.Push(bits);
    }
}
