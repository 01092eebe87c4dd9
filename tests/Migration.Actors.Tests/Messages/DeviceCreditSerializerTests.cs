using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Messages;

/// <summary>DeviceCredit's own control-plane format (docs/protocol.md, "DeviceCredit on the control plane").</summary>
public sealed class DeviceCreditSerializerTests
{
    private static readonly DeviceCredit Sample =
        new(Guid.Parse("6d1f3c2a-0b7e-4a51-9c44-3f0e8d2b9a17"), 3, 8L << 20, 4096, 123456, 1 << 20, 8);

    // version | migration id (Guid byte order) | device | bytes | first chunk | load ticks | buffered | chunks
    private const string Golden = "01" + "2a3c1f6d7e0b514a9c443f0e8d2b9a17" + "03000000" + "0000800000000000" + "0010000000000000" +
                                  "40e2010000000000" + "0000100000000000" + "08000000";

    [Fact]
    public void A_credit_is_written_in_the_documented_57_byte_layout_and_read_back()
    {
        var bytes = new byte[DeviceCreditSerializer.Length];
        DeviceCreditSerializer.Write(Sample, bytes);

        Assert.Equal(Golden, Convert.ToHexString(bytes).ToLowerInvariant());
        Assert.Equal(Sample, DeviceCreditSerializer.Read(Convert.FromHexString(Golden)));
    }

    public static TheoryData<string, string> BadFrames => new()
    {
        { Golden[..^2], "frame of 56 bytes, expected 57" },
        { Golden + "00", "frame of 58 bytes, expected 57" },
        { "", "frame of 0 bytes, expected 57" },
        { "02" + Golden[2..], "frame version 2, expected 1" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public void A_frame_of_another_length_or_version_is_refused_saying_what_arrived(string hex, string expected)
    {
        var e = Assert.Throws<SerializationException>(() => DeviceCreditSerializer.Read(Convert.FromHexString(hex)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task The_node_configuration_carries_credits_in_their_own_format_and_everything_else_with_Hyperion()
    {
        var system = ActorSystem.Create("credit-format", NodeHost.ReferenceConfig());
        try
        {
            var serializer = system.Serialization.FindSerializerFor(Sample);
            Assert.IsType<DeviceCreditSerializer>(serializer);
            Assert.False(serializer.IncludeManifest);
            var bytes = serializer.ToBinary(Sample);
            Assert.Equal(Golden, Convert.ToHexString(bytes).ToLowerInvariant());
            Assert.Equal(Sample, system.Serialization.Deserialize(bytes, DeviceCreditSerializer.Id, typeof(DeviceCredit)));

            Assert.IsType<HyperionSerializer>(system.Serialization.FindSerializerFor(new IterationReceived(Sample.MigrationId, 1)));
            Assert.Throws<ArgumentException>(() => serializer.ToBinary(new IterationReceived(Sample.MigrationId, 1)));
        }
        finally
        {
            await system.Terminate();
        }
    }
}
