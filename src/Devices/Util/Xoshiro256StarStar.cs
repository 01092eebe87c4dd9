using System.Numerics;
using System.Runtime.CompilerServices;

namespace Migration.Devices.Util;

/// <summary>
/// xoshiro256** (Blackman, Vigna): a small, fast, seedable sequential PRNG for deterministic simulation
/// (dirtying choices, workload patterns). A mutable struct: pass by ref, never copy by accident.
/// Not thread-safe; one instance per thread.
/// </summary>
public struct Xoshiro256StarStar
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro256StarStar(ulong seed)
    {
        // Expand the seed with SplitMix64 as the authors recommend; never all zero.
        _s0 = SplitMix64.Word(seed, 0);
        _s1 = SplitMix64.Word(seed, 1);
        _s2 = SplitMix64.Word(seed, 2);
        _s3 = SplitMix64.Word(seed, 3);
        if ((_s0 | _s1 | _s2 | _s3) == 0)
            _s0 = SplitMix64.Golden;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, bound) (Lemire's multiply-high; bias below 2^-32 for bounds under 2^32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextBelow(ulong bound)
    {
        if (bound == 0)
            throw new ArgumentOutOfRangeException(nameof(bound), "bound must be positive");
        return Math.BigMul(NextUInt64(), bound, out _);
    }

    /// <summary>Fills <paramref name="destination"/> with random bytes (little-endian words).</summary>
    public void NextBytes(Span<byte> destination)
    {
        while (destination.Length >= 8)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(destination, NextUInt64());
            destination = destination[8..];
        }
        if (!destination.IsEmpty)
        {
            Span<byte> tmp = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(tmp, NextUInt64());
            tmp[..destination.Length].CopyTo(destination);
        }
    }
}
