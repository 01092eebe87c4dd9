using System.Numerics;
using Migration.Devices.Ram;

namespace Migration.Actors.Source;

/// <summary>
/// Walks the dirty bitmap of every RAM block and produces RAM jobs of at most packet-pages pages of one block.
/// <see cref="BeginIteration"/> fetches and clears each block's bitmap (like a KVM dirty-log sync) into snapshot
/// arrays owned by the scanner and reused across iterations; <see cref="TryNext"/> then hands out the pages in
/// ascending order, in jobs from its pool (no allocation per packet). Owned by the MigrationCoordinator and used only
/// on its thread.
/// </summary>
public sealed class RamScanner
{
    private readonly IReadOnlyList<RamBlock> _blocks;
    private readonly int _pagesPerPacket;
    private readonly ulong[][] _snapshots;
    private readonly RamJobPool _jobs;
    private int _block;
    private int _word;
    private ulong _bits;
    private long _remaining;

    public RamScanner(IReadOnlyList<RamBlock> blocks, int pagesPerPacket)
    {
        _blocks = blocks;
        _pagesPerPacket = pagesPerPacket;
        _snapshots = blocks.Select(b => new ulong[b.Dirty.WordCount]).ToArray();
        _jobs = new RamJobPool(pagesPerPacket);
        _block = blocks.Count;
    }

    public uint Iteration { get; private set; }

    public IReadOnlyList<RamBlock> Blocks => _blocks;

    /// <summary>Where the jobs come from (reused once their packet was sent or dropped).</summary>
    public RamJobPool Jobs => _jobs;

    /// <summary>Block <paramref name="block"/>'s dirty pages as fetched by the last <see cref="BeginIteration"/> (read-only view).</summary>
    public ReadOnlySpan<ulong> Snapshot(int block) => _snapshots[block];

    /// <summary>Dirty pages of this iteration not yet handed out.</summary>
    public long RemainingPages => _remaining;

    public bool Exhausted => _remaining == 0;

    /// <summary>Dirty pages of all blocks now (racy snapshot of the live bitmaps, for estimates).</summary>
    public long CountLiveDirtyPages() => _blocks.Sum(b => b.Dirty.CountDirty());

    /// <summary>Marks every page dirty (the first, bulk iteration sends everything).</summary>
    public void MarkAllDirty()
    {
        foreach (var b in _blocks)
        {
            b.Dirty.MarkAll();
        }
    }

    /// <summary>Syncs the dirty bitmaps into the snapshot; returns the number of pages to send this iteration.</summary>
    public long BeginIteration(uint iteration)
    {
        if (_remaining != 0)
        {
            throw new InvalidOperationException($"iteration {Iteration} still has {_remaining} pages to hand out");
        }

        Iteration = iteration;
        long total = 0;
        for (var i = 0; i < _blocks.Count; i++)
        {
            total += _blocks[i].Dirty.FetchAndClear(_snapshots[i]);
        }

        _remaining = total;
        _block = 0;
        _word = 0;
        _bits = _snapshots.Length > 0 && _snapshots[0].Length > 0 ? _snapshots[0][0] : 0;
        return total;
    }

    /// <summary>Next job of up to packet-pages pages of one block, or false when the iteration is exhausted.</summary>
    public bool TryNext(out RamJob job)
    {
        job = null!;
        while (_remaining > 0 && _block < _blocks.Count)
        {
            var snapshot = _snapshots[_block];
            RamJob? next = null;
            var count = 0;
            while (_word < snapshot.Length)
            {
                if (_bits == 0)
                {
                    _word++;
                    _bits = _word < snapshot.Length ? snapshot[_word] : 0;
                    continue;
                }

                var bit = BitOperations.TrailingZeroCount(_bits);
                _bits &= _bits - 1;
                next ??= _jobs.Rent();
                next.Pages[count++] = ((long)_word << 6) + bit;
                if (count == _pagesPerPacket)
                {
                    break;
                }
            }

            if (count > 0)
            {
                _remaining -= count;
                next!.Set(_block, _blocks[_block], count, Iteration);
                job = next;
                return true;
            }

            _block++;
            _word = 0;
            _bits = _block < _blocks.Count && _snapshots[_block].Length > 0 ? _snapshots[_block][0] : 0;
        }

        return false;
    }
}
