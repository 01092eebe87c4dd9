namespace Migration.Transport.Wire;

// Wire enums of protocol v1. 0 is reserved as invalid in every one of them; a value not listed here
// is rejected by the TryRead of the struct that carries it.

/// <summary>Packet family, one byte in <see cref="PacketHeader"/>.</summary>
public enum PacketType : byte
{
    /// <summary>RAM pages: <see cref="RamPacketHeader"/>, page offsets, payload.</summary>
    Ram = 1,
    /// <summary>One device-state chunk: <see cref="DeviceChunkHeader"/>, payload. Never passes through a RAM codec.</summary>
    DeviceState = 2,
    /// <summary>End of a precopy iteration on this channel: <see cref="SyncPacket"/>.</summary>
    Sync = 3,
    /// <summary>Last packet of the channel: <see cref="EndPacket"/>.</summary>
    End = 4,
}

/// <summary>Packet header flags. Every bit is reserved in v1: a set bit is rejected.</summary>
[Flags]
public enum PacketFlags : ushort
{
    None = 0,
}

/// <summary>Phase in which a device chunk was produced.</summary>
public enum DevicePhase : byte
{
    /// <summary>While the guest runs (initial and dirty device data).</summary>
    Precopy = 1,
    /// <summary>After the guest stopped on the source.</summary>
    StopCopy = 2,
}

/// <summary>Device chunk flags; only <see cref="Last"/> is defined, every other bit is reserved.</summary>
[Flags]
public enum DeviceChunkFlags : byte
{
    None = 0,
    /// <summary>The device's final chunk (its index is the device's chunk count - 1). May be empty.</summary>
    Last = 1,
}

/// <summary>Server's verdict on a <see cref="ChannelHello"/>, in <see cref="ChannelHelloAck"/>.</summary>
public enum HelloStatus : ushort
{
    Accepted = 1,
    /// <summary>No incoming migration with that id is prepared on this node.</summary>
    UnknownMigration = 2,
    /// <summary>The HMAC proof does not match the migration's token.</summary>
    BadProof = 3,
    /// <summary>Channel index/count invalid or different from what the migration negotiated.</summary>
    BadChannel = 4,
    /// <summary>The hello's protocol version is not <see cref="WireConstants.CurrentVersion"/>.</summary>
    VersionMismatch = 5,
    /// <summary>A channel with the same index is already authenticated for this migration.</summary>
    Duplicate = 6,
}
