using Akka.Serialization;
using Migration.Actors.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests;

/// <summary>The specs' configuration really checks control-plane messages with Hyperion, as production carries them.</summary>
public sealed class SpecConfigSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    [Fact]
    public void SpecConfig_must_serialize_migration_messages_with_Hyperion_and_credits_with_their_own_format_on_every_tell()
    {
        Assert.True(Sys.Settings.SerializeAllMessages);
        var received = new IterationReceived(MigrationId, 3);
        var serializer = Sys.Serialization.FindSerializerFor(received);
        Assert.IsType<HyperionSerializer>(serializer);
        Assert.Equal(received, serializer.FromBinary(serializer.ToBinary(received), typeof(IterationReceived)));

        var credit = new DeviceCredit(MigrationId, 3, 4096, 1, 1234, 8192);
        var own = Sys.Serialization.FindSerializerFor(credit);
        Assert.IsType<DeviceCreditSerializer>(own);
        Assert.Equal(credit, own.FromBinary(own.ToBinary(credit), typeof(DeviceCredit)));
    }
}
