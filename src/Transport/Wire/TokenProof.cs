using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Migration.Transport.Wire;

/// <summary>
/// Channel authentication of protocol v1. The destination creates a 32-byte random token per migration and gives
/// it to the source over the control plane; it never crosses a data channel. A client proves knowledge of it with
/// <code>
/// proof = HMAC-SHA256(key = token,
///                     message = nonce (16) ‖ migrationId (16, Guid little-endian layout) ‖ u16 channelIndex LE ‖ u16 channelCount LE)
/// </code>
/// The nonce is fresh per connection (no replay); binding index and count stops a captured hello from being
/// replayed as another channel. Stateless and allocation-free; safe from any thread.
/// </summary>
public static class TokenProof
{
    /// <summary>Bytes of the HMAC message.</summary>
    public const int MessageLength = WireConstants.NonceLength + 16 + 2 + 2;

    /// <summary>Creates a fresh 32-byte migration token (destination side, at Prepare).</summary>
    public static byte[] CreateToken() => RandomNumberGenerator.GetBytes(WireConstants.TokenLength);

    /// <summary>Writes the 32-byte proof to <paramref name="proof32"/>.</summary>
    /// <exception cref="ArgumentException">token not 32 bytes, nonce not 16 bytes, or proof32 shorter than 32.</exception>
    public static void Compute(
        ReadOnlySpan<byte> token, ReadOnlySpan<byte> nonce, Guid migrationId, ushort channelIndex, ushort channelCount,
        Span<byte> proof32)
    {
        CheckLengths(token, nonce);
        if (proof32.Length < WireConstants.TokenProofLength)
        {
            throw new ArgumentException($"proof needs {WireConstants.TokenProofLength} bytes, got {proof32.Length}", nameof(proof32));
        }

        Span<byte> message = stackalloc byte[MessageLength];
        nonce.CopyTo(message);
        migrationId.TryWriteBytes(message[WireConstants.NonceLength..], bigEndian: false, out _);
        BinaryPrimitives.WriteUInt16LittleEndian(message[(WireConstants.NonceLength + 16)..], channelIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(message[(WireConstants.NonceLength + 18)..], channelCount);
        HMACSHA256.HashData(token, message, proof32[..WireConstants.TokenProofLength]);
    }

    /// <summary>
    /// True when <paramref name="proof"/> is the proof for these inputs. The comparison is constant-time
    /// (<see cref="CryptographicOperations.FixedTimeEquals"/>); a proof of the wrong length is false.
    /// </summary>
    public static bool Verify(
        ReadOnlySpan<byte> token, ReadOnlySpan<byte> nonce, Guid migrationId, ushort channelIndex, ushort channelCount,
        ReadOnlySpan<byte> proof)
    {
        Span<byte> expected = stackalloc byte[WireConstants.TokenProofLength];
        Compute(token, nonce, migrationId, channelIndex, channelCount, expected);
        bool ok = proof.Length == WireConstants.TokenProofLength && CryptographicOperations.FixedTimeEquals(expected, proof);
        CryptographicOperations.ZeroMemory(expected);
        return ok;
    }

    private static void CheckLengths(ReadOnlySpan<byte> token, ReadOnlySpan<byte> nonce)
    {
        if (token.Length != WireConstants.TokenLength)
        {
            throw new ArgumentException($"token must be {WireConstants.TokenLength} bytes, got {token.Length}", nameof(token));
        }

        if (nonce.Length != WireConstants.NonceLength)
        {
            throw new ArgumentException($"nonce must be {WireConstants.NonceLength} bytes, got {nonce.Length}", nameof(nonce));
        }
    }
}
