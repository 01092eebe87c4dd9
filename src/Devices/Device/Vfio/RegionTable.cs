using System.Buffers.Binary;
using System.IO.Hashing;
using Migration.Devices.Util;

namespace Migration.Devices.Device.Vfio;

/// <summary>
/// The simulated device's state: N regions, each identified by its current version; region bytes are never
/// stored but generated on demand as SplitMix64 stream <c>Key(seed, region, version)</c>. Also caches the
/// XxHash3 (64-bit) of each region's bytes at a given version (filled from bytes streamed out on the source and
/// bytes verified on the destination, else computed on demand).
/// Threading: owned by one <see cref="SimulatedVfioDevice"/>, used under its lock.
/// </summary>
internal sealed class RegionTable
{
    private readonly ulong _seed;
    private readonly uint[] _versions;
    private readonly ulong[] _hash;
    private readonly uint[] _hashVersion;
    private readonly bool[] _hashValid;
    private readonly byte[] _scratch;

    public RegionTable(SimulatedVfioOptions options)
    {
        _seed = (ulong)options.Seed;
        StateSize = options.StateSizeBytes;
        RegionSize = options.RegionSize;
        Count = options.RegionCount;
        _versions = new uint[Count];
        _hash = new ulong[Count];
        _hashVersion = new uint[Count];
        _hashValid = new bool[Count];
        // Allocated with the device (setup), not at its first save or load: a per-device buffer, not per byte moved.
        _scratch = new byte[Math.Min(RegionSize, 256 * 1024)];
    }

    public long StateSize { get; }
    public int RegionSize { get; }
    public int Count { get; }

    public uint VersionOf(int region) => _versions[region];

    public void SetVersion(int region, uint version) => _versions[region] = version;

    /// <summary>Bumps the region's version (the running device changed it).</summary>
    public void Bump(int region) => _versions[region]++;

    public int SizeOf(int region)
        => region == Count - 1 ? (int)(StateSize - (long)region * RegionSize) : RegionSize;

    /// <summary>Header plus payload bytes of this region's record.</summary>
    public long RecordBytes(int region) => RegionRecordHeader.Size + SizeOf(region);

    /// <summary>Record bytes of regions [first, end).</summary>
    public long RecordBytes(int first, int end)
    {
        if (end <= first)
            return 0;
        long payload = Math.Min(StateSize, (long)end * RegionSize) - (long)first * RegionSize;
        return (long)(end - first) * RegionRecordHeader.Size + payload;
    }

    /// <summary>Writes bytes [offset, offset + destination.Length) of the region's content at that version.</summary>
    public void Generate(int region, uint version, long offset, Span<byte> destination)
        => SplitMix64.Fill(SplitMix64.Key(_seed, (ulong)region, version), offset, destination);

    /// <summary>A reusable buffer for generating expected content (one per device).</summary>
    public byte[] Scratch => _scratch;

    public void SetHash(int region, uint version, ulong hash)
    {
        _hash[region] = hash;
        _hashVersion[region] = version;
        _hashValid[region] = true;
    }

    /// <summary>All versions back to 0 (the initial state) and the hash cache dropped.</summary>
    public void ResetVersions()
    {
        Array.Clear(_versions);
        Array.Clear(_hashValid);
    }

    /// <summary>XxHash3 (64-bit) of the region's bytes at its current version (cached).</summary>
    public ulong HashOf(int region)
    {
        uint version = _versions[region];
        if (_hashValid[region] && _hashVersion[region] == version)
            return _hash[region];
        var hasher = new XxHash3();
        byte[] scratch = Scratch;
        int size = SizeOf(region);
        for (int offset = 0; offset < size; offset += scratch.Length)
        {
            int n = Math.Min(scratch.Length, size - offset);
            Generate(region, version, offset, scratch.AsSpan(0, n));
            hasher.Append(scratch.AsSpan(0, n));
        }
        ulong hash = hasher.GetCurrentHashAsUInt64();
        SetHash(region, version, hash);
        return hash;
    }

    /// <summary>XxHash128 over (u32 region, u32 version, u64 content hash), little-endian, for every region in order.</summary>
    public UInt128 Digest()
    {
        const int perBatch = 4096;
        // Rented here and returned below (once per digest, at the end of a save or load).
        byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent(perBatch * 16);
        Span<byte> batch = rented.AsSpan(0, perBatch * 16);
        var digest = new XxHash128();
        int filled = 0;
        for (int r = 0; r < Count; r++)
        {
            Span<byte> entry = batch.Slice(filled * 16, 16);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, (uint)r);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], _versions[r]);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], HashOf(r));
            if (++filled == perBatch)
            {
                digest.Append(batch);
                filled = 0;
            }
        }
        digest.Append(batch[..(filled * 16)]);
        System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        return digest.GetCurrentHashAsUInt128();
    }
}
