using Migration.Devices.Util;

namespace Migration.Devices.Device.Structured;

/// <summary>
/// A demo vmstate device modelled on virtio-net with an RTC-like clock, in three schema versions:
/// v1: mac, model, status, queue_pairs, host_features, link_up, rtc_seconds, rx_packets;
/// v2 adds mtu (default 1500) and rss_enabled (default false); v3 adds announce_count (default 0).
/// Values come from a seed, so two devices built with the same seed and version are equal.
/// </summary>
public static class DemoStructuredDevices
{
    public const int LatestVersion = 3;

    public static StructuredSchema VirtioNetSchema(int version = LatestVersion)
    {
        if (version < 1 || version > LatestVersion)
            throw new ArgumentOutOfRangeException(nameof(version), version, $"demo schema versions are 1..{LatestVersion}");
        FieldSpec[] all =
        [
            new("mac", FieldType.Bytes, 1, FieldValue.Bytes([0x52, 0x54, 0x00, 0, 0, 0])),
            new("model", FieldType.String, 1, FieldValue.String("virtio-net-pci")),
            new("status", FieldType.U8, 1, FieldValue.U8(0)),
            new("queue_pairs", FieldType.U16, 1, FieldValue.U16(1)),
            new("host_features", FieldType.U64, 1, FieldValue.U64(0)),
            new("link_up", FieldType.Bool, 1, FieldValue.Bool(true)),
            new("rtc_seconds", FieldType.I64, 1, FieldValue.I64(0)),
            new("rx_packets", FieldType.U64, 1, FieldValue.U64(0)),
            new("mtu", FieldType.U32, 2, FieldValue.U32(1500)),
            new("rss_enabled", FieldType.Bool, 2, FieldValue.Bool(false)),
            new("announce_count", FieldType.U8, 3, FieldValue.U8(0)),
        ];
        return new StructuredSchema("virtio-net", version, all.Where(f => f.SinceVersion <= version).ToArray());
    }

    /// <summary>A device of schema <paramref name="version"/> whose field values derive from <paramref name="seed"/>.</summary>
    public static StructuredDevice CreateVirtioNet(string id, int instance, int seed, int version = LatestVersion)
    {
        StructuredSchema schema = VirtioNetSchema(version);
        var rng = new Xoshiro256StarStar(SplitMix64.Key((ulong)seed, 0x6e6574));
        Span<byte> mac = stackalloc byte[6];
        rng.NextBytes(mac);
        mac[0] = 0x52; // locally administered, QEMU-style prefix
        mac[1] = 0x54;
        mac[2] = 0x00;
        var values = new Dictionary<string, FieldValue>
        {
            ["mac"] = FieldValue.Bytes(mac),
            ["model"] = FieldValue.String($"virtio-net-pci#{seed}"),
            ["status"] = FieldValue.U8((byte)rng.NextBelow(16)),
            ["queue_pairs"] = FieldValue.U16((ushort)(1 + rng.NextBelow(8))),
            ["host_features"] = FieldValue.U64(rng.NextUInt64()),
            ["link_up"] = FieldValue.Bool(rng.NextBelow(2) == 1),
            ["rtc_seconds"] = FieldValue.I64(1_700_000_000 + (long)rng.NextBelow(100_000_000)),
            ["rx_packets"] = FieldValue.U64(rng.NextBelow(1UL << 40)),
        };
        if (version >= 2)
        {
            values["mtu"] = FieldValue.U32((uint)(1280 + rng.NextBelow(8000)));
            values["rss_enabled"] = FieldValue.Bool(rng.NextBelow(2) == 1);
        }
        if (version >= 3)
            values["announce_count"] = FieldValue.U8((byte)rng.NextBelow(4));
        return new StructuredDevice(id, instance, schema, values);
    }
}
