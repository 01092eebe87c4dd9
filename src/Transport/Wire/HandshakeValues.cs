using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Migration.Transport.Wire;

/// <summary>
/// The 16 random bytes of a <see cref="ChannelChallenge"/>, held as two u64 read little-endian from the wire bytes
/// so that the value has structural equality and needs no array. <see cref="WriteTo"/> reproduces the exact bytes.
/// </summary>
public readonly record struct ChallengeNonce(ulong Low, ulong High)
{
    public const int Size = WireConstants.NonceLength;

    /// <summary>A fresh nonce from the OS CSPRNG; one per accepted connection, never reused.</summary>
    public static ChallengeNonce Create()
    {
        Span<byte> bytes = stackalloc byte[Size];
        RandomNumberGenerator.Fill(bytes);
        return Read(bytes);
    }

    /// <summary>Reads exactly the first 16 bytes of <paramref name="source"/>.</summary>
    public static ChallengeNonce Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(source), BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Low);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], High);
    }
}

/// <summary>
/// The 32-byte HMAC-SHA256 proof of a <see cref="ChannelHello"/> (see <see cref="TokenProof"/>), held as four u64
/// read little-endian from the wire bytes. Compare proofs with <see cref="TokenProof.Verify"/> (constant time),
/// never with ==.
/// </summary>
public readonly record struct HelloProof(ulong P0, ulong P1, ulong P2, ulong P3)
{
    public const int Size = WireConstants.TokenProofLength;

    /// <summary>Reads exactly the first 32 bytes of <paramref name="source"/>.</summary>
    public static HelloProof Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[24..]));

    /// <summary>Computes the proof a client must send (see <see cref="TokenProof.Compute"/>).</summary>
    public static HelloProof Compute(
        ReadOnlySpan<byte> token, in ChallengeNonce nonce, Guid migrationId, ushort channelIndex, ushort channelCount)
    {
        Span<byte> nonceBytes = stackalloc byte[ChallengeNonce.Size];
        nonce.WriteTo(nonceBytes);
        Span<byte> proof = stackalloc byte[Size];
        TokenProof.Compute(token, nonceBytes, migrationId, channelIndex, channelCount, proof);
        return Read(proof);
    }

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, P0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], P1);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], P2);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], P3);
    }
}
