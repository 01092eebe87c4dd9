namespace Migration.Transport.Wire;

/// <summary>
/// Magic numbers, the protocol version and the hard limits of wire protocol v1 (see docs/protocol.md).
/// Every multi-byte integer on the wire is LITTLE-ENDIAN; magics are chosen so that their four bytes
/// read as ASCII on the wire ("MGPK" = 'M','G','P','K').
/// Hard limits bound what any peer may send, whatever was negotiated; negotiated limits
/// (<see cref="ReceiveLimits"/>) may only be tighter.
/// </summary>
public static class WireConstants
{
    /// <summary>"MGPK": first four bytes of every data packet.</summary>
    public const uint PacketMagic = 0x4B50474D;

    /// <summary>"MGCH": server → client challenge, first message on a new channel.</summary>
    public const uint ChallengeMagic = 0x4843474D;

    /// <summary>"MGHL": client → server hello carrying the token proof.</summary>
    public const uint HelloMagic = 0x4C48474D;

    /// <summary>"MGHA": server → client verdict on the hello.</summary>
    public const uint HelloAckMagic = 0x4148474D;

    /// <summary>
    /// The only version this code speaks. Bumped for breaking changes only; a receiver rejects any other value.
    /// One byte in <see cref="PacketHeader"/>, two bytes in the handshake messages.
    /// </summary>
    public const byte CurrentVersion = 1;

    /// <summary>Guest page size; every RAM page offset is a multiple of it.</summary>
    public const int PageSize = 4096;

    /// <summary>log2(<see cref="PageSize"/>).</summary>
    public const int PageShift = 12;

    /// <summary>Hard cap on normal + zero pages in one RAM packet.</summary>
    public const int MaxPagesPerPacket = 1024;

    /// <summary>Hard cap on the payload of one device-state chunk (64 MiB).</summary>
    public const int MaxDeviceChunkBytes = 64 * 1024 * 1024;

    /// <summary>Hard cap on the number of channels of one migration.</summary>
    public const int MaxChannels = 64;

    /// <summary>Length of the HMAC-SHA256 token proof in <see cref="ChannelHello"/>.</summary>
    public const int TokenProofLength = 32;

    /// <summary>Length of the random nonce in <see cref="ChannelChallenge"/>.</summary>
    public const int NonceLength = 16;

    /// <summary>Length of the per-migration secret token given to the source over the control plane.</summary>
    public const int TokenLength = 32;
}
