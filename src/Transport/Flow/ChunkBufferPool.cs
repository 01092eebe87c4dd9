using System.Buffers;
using System.Numerics;

namespace Migration.Transport.Flow;

/// <summary>
/// A pool of device chunk buffers that keeps idle buffers of ONE chunk size: the bucket (the power of two at or above
/// the chunk size) of the latest <see cref="Prepare"/>, at most <see cref="MaxIdle"/> of them, plus at most
/// <see cref="ShorterIdlePerBucket"/> of each smaller bucket for the short chunks that end a device's read (less
/// than 8 x the chunk size in all). Preparing for another
/// size drops the idle buffers of the old one, and a buffer of another size coming back is dropped too (the GC takes
/// it), so what the pool holds between migrations is bounded by one migration's chunks out at once, whatever chunk
/// sizes its peers chose (4 KiB..64 MiB each: a pool with one set per size, like ArrayPool.Create's, could be left
/// holding a device budget of each). The price: two migrations with different chunk sizes at once on one node
/// allocate the chunks of the one not current, as ArrayPool.Shared would.
/// Rent hands out an idle buffer when the request's bucket is the current one (the array may be longer than asked, as
/// ArrayPool's are; its bytes are whatever the last renter left, which the renter overwrites), and otherwise allocates
/// an array of the request's own bucket; a request never gets a buffer of a larger bucket than its own. Thread-safe (one short lock per rent and return; the chunks are 4 KiB..64 MiB, never per page).
/// </summary>
public sealed class ChunkBufferPool(int maxIdle) : ArrayPool<byte>
{
    private readonly object _gate = new();
    private readonly Stack<byte[]> _idle = new();
    private readonly Stack<byte[]>[] _shorter = Enumerable.Range(0, 31).Select(_ => new Stack<byte[]>()).ToArray(); // by log2 of bucket, below the current one
    private int _bucket = 1 << 20; // the default chunk size's, until the first Prepare

    /// <summary>Idle buffers kept per bucket below the current one (a device's short chunks): at most 8 x the current bucket in all.</summary>
    public const int ShorterIdlePerBucket = 8;

    /// <summary>The most idle buffers of the current bucket the pool keeps.</summary>
    public int MaxIdle { get; } = maxIdle > 0 ? maxIdle : throw new ArgumentOutOfRangeException(nameof(maxIdle), maxIdle, "expected at least 1");

    /// <summary>The length of the buffers the pool keeps now.</summary>
    public int BucketBytes
    {
        get
        {
            lock (_gate)
            {
                return _bucket;
            }
        }
    }

    /// <summary>Bytes of idle buffers held now.</summary>
    public long IdleBytes
    {
        get
        {
            lock (_gate)
            {
                return ((long)_idle.Count * _bucket) + _shorter.Sum(st => st.Sum(b => (long)b.Length));
            }
        }
    }

    /// <summary>The bucket of <paramref name="length"/> bytes: the power of two at or above it, at least 4 KiB.</summary>
    public static int BucketOf(int length) => (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(4096, length));

    public override byte[] Rent(int minimumLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minimumLength);
        if (minimumLength == 0)
        {
            return [];
        }

        // Only a request of the current bucket's own size gets one of its buffers: a migration with small chunks must
        // not get (or allocate) the large buffers of another migration's bucket, which its budget does not count.
        var bucket = BucketOf(minimumLength);
        lock (_gate)
        {
            var stash = bucket == _bucket ? _idle : bucket < _bucket ? _shorter[BitOperations.Log2((uint)bucket)] : null;
            if (stash is not null && stash.TryPop(out var idle))
            {
                return idle;
            }
        }

        return GC.AllocateUninitializedArray<byte>(bucket);
    }

    public override void Return(byte[] array, bool clearArray = false)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length == 0)
        {
            return;
        }

        if (clearArray)
        {
            Array.Clear(array);
        }

        lock (_gate)
        {
            if (array.Length == _bucket && _idle.Count < MaxIdle)
            {
                _idle.Push(array);
            }
            else if (array.Length < _bucket && BitOperations.IsPow2(array.Length) && array.Length >= 4096
                     && _shorter[BitOperations.Log2((uint)array.Length)] is { Count: < ShorterIdlePerBucket } stash)
            {
                stash.Push(array);
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="chunkSize"/>'s bucket the current one (dropping idle buffers of another) and holds at least
    /// min(<paramref name="count"/>, <see cref="MaxIdle"/>) idle buffers of it, allocated here (outside the lock) for
    /// those missing: a migration's chunks out at once then need no allocation while its chunks stream.
    /// </summary>
    public void Prepare(int count, int chunkSize)
    {
        var bucket = BucketOf(chunkSize);
        int missing;
        lock (_gate)
        {
            if (bucket != _bucket)
            {
                _idle.Clear();
                foreach (var stash in _shorter)
                {
                    stash.Clear();
                }

                _bucket = bucket;
            }

            missing = Math.Min(count, MaxIdle) - _idle.Count;
        }

        var fresh = new byte[Math.Max(0, missing)][];
        for (var i = 0; i < fresh.Length; i++)
        {
            fresh[i] = GC.AllocateUninitializedArray<byte>(bucket);
        }

        foreach (var buffer in fresh)
        {
            Return(buffer); // dropped if another Prepare changed the bucket meanwhile
        }
    }
}
