using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// Client (source) → server, after the challenge; 60 bytes little-endian:
/// <code>
/// off size field
///   0    4 magic         0x4C48474D ("MGHL")
///   4    2 version       1
///   6    2 channelIndex  0..channelCount-1
///   8    2 channelCount  1..64, equal to the negotiated count
///  10    2 connection    the source's number for this connection of the channel: 0 for the first, higher for each
///                        reconnect attempt (strictly increasing per channel index); was "reserved, 0" before
///                        reconnect existed, so a first connection is byte-identical to that layout
///  12   16 migrationId   Guid, Guid.TryWriteBytes little-endian layout (bigEndian: false)
///  28   32 proof         HMAC-SHA256, see TokenProof
/// </code>
/// </summary>
/// <remarks>
/// The connection number is not covered by the proof: it only lets the destination tell a reconnect from a stale or
/// replayed attempt and name the connection in its ChannelResume; only a holder of the token gets past the proof.
/// </remarks>
public readonly record struct ChannelHello(ushort ChannelIndex, ushort ChannelCount, Guid MigrationId, HelloProof Proof, ushort Connection = 0)
{
    public const int Size = 60;

    public ushort Version => WireConstants.CurrentVersion;

    /// <summary>Builds the hello a source sends in answer to <paramref name="challenge"/>.</summary>
    public static ChannelHello Create(
        ReadOnlySpan<byte> token, in ChannelChallenge challenge, Guid migrationId, ushort channelIndex, ushort channelCount, ushort connection = 0) =>
        new(channelIndex, channelCount, migrationId,
            HelloProof.Compute(token, challenge.Nonce, migrationId, channelIndex, channelCount), connection);

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"need {Size} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, WireConstants.HelloMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], WireConstants.CurrentVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], ChannelIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], ChannelCount);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[10..], Connection);
        MigrationId.TryWriteBytes(destination[12..], bigEndian: false, out _);
        Proof.WriteTo(destination[28..]);
    }

    /// <summary>Reads and validates structure (magic, version, reserved, channelIndex &lt; channelCount ≤ 64).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ChannelHello value, out string error) =>
        TryRead(source, out value, out _, out error);

    /// <summary>
    /// As <see cref="TryRead(ReadOnlySpan{byte}, out ChannelHello, out string)"/>, and on failure tells the server
    /// which status to answer: <see cref="HelloStatus.VersionMismatch"/>, <see cref="HelloStatus.BadChannel"/>, or
    /// 0 (malformed: bad magic, truncated) meaning "send no ack, close the connection".
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ChannelHello value, out HelloStatus rejection, out string error)
    {
        value = default;
        rejection = default;
        if (source.Length < Size)
        {
            error = WireError.Truncated(WireError.NoChannel, "hello", source.Length, Size);
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic != WireConstants.HelloMagic)
        {
            error = WireError.Magic(WireError.NoChannel, "hello", magic, WireConstants.HelloMagic);
            return false;
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(source[4..]);
        if (version != WireConstants.CurrentVersion)
        {
            rejection = HelloStatus.VersionMismatch;
            error = "hello: " + WireError.Version(WireError.NoChannel, version);
            return false;
        }

        ushort index = BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        ushort count = BinaryPrimitives.ReadUInt16LittleEndian(source[8..]);
        ushort connection = BinaryPrimitives.ReadUInt16LittleEndian(source[10..]);
        if (count == 0 || count > WireConstants.MaxChannels || index >= count)
        {
            rejection = HelloStatus.BadChannel;
            error = $"hello: channel index {index} with channel count {count}, expected index < count <= {WireConstants.MaxChannels}";
            return false;
        }

        var migrationId = new Guid(source.Slice(12, 16), bigEndian: false);
        // Any connection number is well-formed; whether it is newer than the last one accepted is the listener's check.
        value = new ChannelHello(index, count, migrationId, HelloProof.Read(source[28..]), connection);
        error = string.Empty;
        return true;
    }

    /// <summary>
    /// Server side, after the migration was found by <see cref="MigrationId"/>: checks the channel count against
    /// the negotiated one, then the proof (constant time). Returns the status to send; error is empty on Accepted.
    /// Duplicate channel indexes are the caller's check (it owns the channel table).
    /// </summary>
    public HelloStatus Authenticate(ReadOnlySpan<byte> token, in ChannelChallenge challenge, int expectedChannelCount, out string error)
    {
        if (ChannelCount != expectedChannelCount || ChannelIndex >= ChannelCount)
        {
            error = WireError.At(ChannelIndex, $"hello channel count {ChannelCount}, migration negotiated {expectedChannelCount}");
            return HelloStatus.BadChannel;
        }

        Span<byte> nonce = stackalloc byte[ChallengeNonce.Size];
        challenge.Nonce.WriteTo(nonce);
        Span<byte> proof = stackalloc byte[HelloProof.Size];
        Proof.WriteTo(proof);
        if (!TokenProof.Verify(token, nonce, MigrationId, ChannelIndex, ChannelCount, proof))
        {
            error = WireError.At(ChannelIndex, $"hello proof does not match the token of migration {MigrationId}");
            return HelloStatus.BadProof;
        }

        error = string.Empty;
        return HelloStatus.Accepted;
    }
}
