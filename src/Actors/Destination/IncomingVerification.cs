using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Devices.Guest;

namespace Migration.Actors.Destination;

/// <summary>
/// What an incoming migration must have before it may say "verified", and the comparison itself: which channels
/// ended (and the pages they delivered, lost connections included), which devices finished loading (with their
/// digests and load statistics), the RAM digests (hashed once every channel ended) and the source's digests. The
/// actor decides when to compare (it also waits for the ownership record and an injected hold); this class answers
/// what is still missing, compares, and builds the statistics the source is sent.
/// Threading: owned by the IncomingMigration and called only on its thread; the RAM hashing runs on the thread pool
/// and comes back to the actor as <see cref="RamDigestsReady"/>.
/// </summary>
internal sealed class IncomingVerification
{
    private readonly int _channels;
    private readonly IncomingResources _resources;
    private readonly IncomingAllocationProbe _allocation;
    private readonly HashSet<int> _ended = [];
    private DeviceLoaded?[] _loaded = [];
    private string[]? _ramDigests;
    private long _normalPages;
    private long _zeroPages;
    private bool _hashingStarted;

    /// <param name="channels">How many channels must end before RAM is complete.</param>
    public IncomingVerification(int channels, IncomingResources resources, IncomingAllocationProbe allocation)
    {
        _channels = channels;
        _resources = resources;
        _allocation = allocation;
    }

    /// <summary>The source's digests and vCPU position (null until they arrive).</summary>
    public SourceDigests? Source { get; private set; }

    public bool AllChannelsEnded => _ended.Count == _channels;

    public bool RamHashed => _ramDigests is not null;

    /// <summary>The source's digests arrived and every device reported its load.</summary>
    public bool SourceAndDevicesReady => Source is not null && _loaded.All(l => l is not null);

    /// <summary>At allocation: the guest has this many devices, each to report DeviceLoaded.</summary>
    public void ExpectDevices(int count) => _loaded = new DeviceLoaded?[count];

    /// <summary>A channel read End; true when every channel has (then the source's digests must follow).</summary>
    public bool ChannelEnded(RecvChannelEnded e)
    {
        _ended.Add(e.Channel);
        CountPages(e.NormalPages, e.ZeroPages);
        return AllChannelsEnded;
    }

    /// <summary>Pages a channel delivered (at its End, or before its connection was lost: those still count).</summary>
    public void CountPages(long normalPages, long zeroPages)
    {
        _normalPages += normalPages;
        _zeroPages += zeroPages;
    }

    public void OnDeviceLoaded(DeviceLoaded l) => _loaded[l.DeviceIndex] = l;

    public void OnSourceDigests(SourceDigests d) => Source = d;

    /// <summary>
    /// Null when the source's digests fit this migration and guest: its id, one digest per RAM block and per device (no
    /// list missing), and a vCPU position inside the guest's RAM; else what arrived against what was expected. Checked
    /// before the digests are used: a bad position would otherwise throw in Resume, after the ownership moved here,
    /// and the guest would run nowhere.
    /// </summary>
    public static string? SourceDigestsProblem(SourceDigests d, Guid migrationId, GuestVm guest)
    {
        if (d.MigrationId != migrationId)
        {
            return $"digests for migration {d.MigrationId}; expected {migrationId}";
        }

        if (d.Ram is null || d.Devices is null || d.ChunksPerDevice is null)
        {
            return $"a missing list (RAM {(d.Ram is null ? "missing" : "present")}, devices {(d.Devices is null ? "missing" : "present")}, " +
                   $"chunks per device {(d.ChunksPerDevice is null ? "missing" : "present")}); expected all three";
        }

        if (d.Ram.Count != guest.Blocks.Count || d.Devices.Count != guest.Devices.Count || d.ChunksPerDevice.Count != guest.Devices.Count)
        {
            return $"{d.Ram.Count} RAM digests, {d.Devices.Count} device digests and {d.ChunksPerDevice.Count} chunk counts; " +
                   $"expected {guest.Blocks.Count} RAM blocks and {guest.Devices.Count} devices";
        }

        if (d.CpuBlock < 0 || d.CpuBlock >= guest.Blocks.Count || d.CpuPage < 0 || d.CpuPage >= guest.Blocks[d.CpuBlock].PageCount)
        {
            var pages = d.CpuBlock >= 0 && d.CpuBlock < guest.Blocks.Count ? $"{guest.Blocks[d.CpuBlock].PageCount} pages" : "no such block";
            return $"vCPU position (block {d.CpuBlock}, page {d.CpuPage}); expected a block in 0..{guest.Blocks.Count - 1} and a page within it ({pages})";
        }

        return null;
    }

    public void OnRamDigests(string[] digests) => _ramDigests = digests;

    /// <summary>All RAM has arrived: hash what was not hashed yet (once), while devices finish loading.</summary>
    public void StartRamHashing(IActorRef owner)
    {
        if (!_hashingStarted)
        {
            _hashingStarted = true;
            _resources.RamTracker.FinishAsync().PipeTo(owner, success: d => new RamDigestsReady(d));
        }
    }

    /// <summary>The progress line of the debug log (what has arrived so far).</summary>
    public string Describe(Guid id) =>
        $"incoming {id}: channels ended {_ended.Count}/{_channels}, devices loaded {_loaded.Count(l => l is not null)}/{_loaded.Length}, ram digests {_ramDigests is not null}, source digests {Source is not null}";

    /// <summary>Every RAM block and device whose digest differs from the source's (empty: verified). Needs <see cref="RamHashed"/> and <see cref="SourceAndDevicesReady"/>.</summary>
    public List<string> Mismatches(GuestVm guest)
    {
        var ram = _ramDigests!;
        var source = Source!;
        var mismatches = new List<string>();
        for (var i = 0; i < ram.Length; i++)
        {
            if (i >= source.Ram.Count || source.Ram[i] != ram[i])
            {
                mismatches.Add($"RAM block {guest.Blocks[i].Name}: destination {ram[i]}, source {(i < source.Ram.Count ? source.Ram[i] : "missing")}");
            }
        }

        for (var i = 0; i < _loaded.Length; i++)
        {
            var src = i < source.Devices.Count ? source.Devices[i] : "missing";
            if (src != _loaded[i]!.Digest)
            {
                mismatches.Add($"device {guest.Devices[i].Identity.Id}: destination {_loaded[i]!.Digest}, source {src}");
            }
        }

        return mismatches;
    }

    /// <summary>The destination's measurements so far (sent with DestinationVerified or IncomingFailed).</summary>
    public IncomingStats Stats()
    {
        var budget = _resources.Budget;
        return new IncomingStats(
            budget.PeakBytes,
            budget.BudgetBytes,
            _loaded.Sum(l => l?.Stats.OutOfOrderChunks ?? 0),
            _loaded.Where(l => l is not null).Select(l => new DeviceIncomingStats(l!.Stats.Id, l.Stats.Chunks, l.Stats.Bytes, l.Stats.OutOfOrderChunks, l.Stats.PeakBufferedBytes, l.Stats.LoadMs)).ToArray(),
            _ramDigests ?? [],
            _loaded.Select(l => l?.Digest ?? "").ToArray(),
            _normalPages,
            _zeroPages,
            _allocation.AllocatedBytes(),
            _allocation.SteadyMiBPerGiB);
    }
}
