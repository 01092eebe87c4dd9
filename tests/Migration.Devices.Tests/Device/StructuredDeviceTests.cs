using Migration.Devices.Device;
using Migration.Devices.Device.Structured;
using Xunit;

namespace Migration.Devices.Tests.Device;

public sealed class StructuredDeviceTests
{
    [Fact]
    public void Save_and_load_round_trip_with_equal_digest()
    {
        var source = DemoStructuredDevices.CreateVirtioNet("net0", 0, seed: 11);
        source.Set("rx_packets", FieldValue.U64(123456));
        var destination = DemoStructuredDevices.CreateVirtioNet("net0", 0, seed: 99);
        Assert.NotEqual(source.ComputeDigest(), destination.ComputeDigest());

        var chunks = DeviceStreams.Save(source, 4096);
        Assert.Single(chunks);
        DeviceStreams.Load(destination, chunks);
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
        Assert.Equal(123456UL, destination.Get("rx_packets").AsUInt64());
        Assert.Equal(source.Get("mac"), destination.Get("mac"));
    }

    [Fact]
    public void Precopy_is_empty()
    {
        var d = DemoStructuredDevices.CreateVirtioNet("net0", 0, 1);
        d.StartPrecopy();
        Assert.Equal(0, d.QueryPrecopy().Total);
        Assert.Equal(0, d.ReadPrecopy(new byte[100]));
    }

    [Fact]
    public void Blob_split_across_many_chunks_loads()
    {
        var source = DemoStructuredDevices.CreateVirtioNet("net0", 0, 3);
        var chunks = DeviceStreams.Rechunk(DeviceStreams.Save(source, 1 << 16), 7);
        Assert.True(chunks.Count > 10);
        var destination = DemoStructuredDevices.CreateVirtioNet("net0", 0, 4);
        DeviceStreams.Load(destination, chunks);
        Assert.Equal(source.ComputeDigest(), destination.ComputeDigest());
    }

    [Fact]
    public void Older_version_loads_with_defaults_for_newer_fields()
    {
        var v1 = DemoStructuredDevices.CreateVirtioNet("net0", 0, 5, version: 1);
        var v3 = DemoStructuredDevices.CreateVirtioNet("net0", 0, 6, version: 3);
        DeviceStreams.Load(v3, DeviceStreams.Save(v1, 4096));
        Assert.Equal(1500u, v3.Get("mtu").AsUInt64());
        Assert.False(v3.Get("rss_enabled").AsBool());
        Assert.Equal(v1.Get("rtc_seconds"), v3.Get("rtc_seconds"));
        Assert.Equal(v1.Get("model").AsString(), v3.Get("model").AsString());
    }

    [Fact]
    public void Newer_version_is_refused()
    {
        var v3 = DemoStructuredDevices.CreateVirtioNet("rtc0", 0, 5, version: 3);
        var v2 = DemoStructuredDevices.CreateVirtioNet("rtc0", 0, 5, version: 2);
        var before = v2.Snapshot();
        var e = Assert.Throws<DeviceStateException>(() => DeviceStreams.Load(v2, DeviceStreams.Save(v3, 4096)));
        Assert.StartsWith("device rtc0: state version 3 is newer than supported version 2", e.Message);
        Assert.Equal(DeviceMigrationState.Error, v2.State);
        Assert.Equal(before["mtu"], v2.Snapshot()["mtu"]); // nothing applied
    }

    [Fact]
    public void Unknown_field_in_a_same_version_blob_is_an_error()
    {
        var other = new StructuredDevice("net0", 0, new StructuredSchema("virtio-net", 1,
            [new FieldSpec("mac", FieldType.Bytes, 1, FieldValue.Bytes([1])), new FieldSpec("bogus", FieldType.U8, 1, FieldValue.U8(1))]));
        var d = DemoStructuredDevices.CreateVirtioNet("net0", 0, 1, version: 1);
        var e = Assert.Throws<DeviceStateException>(() => DeviceStreams.Load(d, DeviceStreams.Save(other, 4096)));
        Assert.Contains("unknown field 'bogus' in state version 1", e.Message);
    }

    [Fact]
    public void Corrupted_or_truncated_blob_is_an_error()
    {
        var source = DemoStructuredDevices.CreateVirtioNet("net0", 0, 1);
        byte[] blob = DeviceStreams.Save(source, 4096)[0];
        blob[20] ^= 0xff;
        var d = DemoStructuredDevices.CreateVirtioNet("net0", 0, 1);
        Assert.Contains("checksum", Assert.Throws<DeviceStateException>(() => DeviceStreams.Load(d, [blob])).Message);
        d.Reset();
        Assert.Throws<DeviceStateException>(() => DeviceStreams.Load(d, [blob[..30]]));
    }

    [Fact]
    public void Out_of_order_chunk_is_an_error()
    {
        var d = DemoStructuredDevices.CreateVirtioNet("net0", 0, 1);
        d.StartResuming();
        d.WriteChunk(0, [1, 2]);
        var e = Assert.Throws<DeviceStateException>(() => d.WriteChunk(2, [3]));
        Assert.Equal("device net0: chunk 2 written after chunk 0; expected 1", e.Message);
    }

    [Fact]
    public void Fields_change_only_while_running_and_only_with_their_type()
    {
        var d = DemoStructuredDevices.CreateVirtioNet("net0", 0, 1);
        d.Set("status", FieldValue.U8(7));
        Assert.Throws<ArgumentException>(() => d.Set("status", FieldValue.U16(7)));
        Assert.Throws<ArgumentException>(() => d.Set("nope", FieldValue.U8(7)));
        d.StartStopCopy();
        Assert.Throws<DeviceStateException>(() => d.Set("status", FieldValue.U8(8)));
        Assert.Equal(7u, d.Get("status").AsUInt64());
    }

    [Fact]
    public void Schema_rejects_duplicates_and_bad_versions()
    {
        Assert.Throws<ArgumentException>(() => new StructuredSchema("s", 1,
            [new FieldSpec("a", FieldType.U8, 1, FieldValue.U8(0)), new FieldSpec("a", FieldType.U8, 1, FieldValue.U8(0))]));
        Assert.Throws<ArgumentException>(() => new StructuredSchema("s", 1, [new FieldSpec("a", FieldType.U8, 2, FieldValue.U8(0))]));
        Assert.Throws<ArgumentException>(() => new StructuredSchema("s", 1, [new FieldSpec("a", FieldType.U8, 1, FieldValue.U16(0))]));
    }
}
