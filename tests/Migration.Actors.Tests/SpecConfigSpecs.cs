using Akka.Serialization;
using Migration.Actors.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests;

/// <summary>The specs' configuration really checks control-plane messages with Hyperion, as production carries them.</summary>
public sealed class SpecConfigSpecs(ITestOutputHelper output) : MigrationSpec(output)
{
    [Fact]
    public void SpecConfig_must_serialize_migration_messages_with_Hyperion_on_every_tell()
    {
        Assert.True(Sys.Settings.SerializeAllMessages);
        var credit = new DeviceCredit(MigrationId, 3, 4096, 1, 1234, 8192);
        var serializer = Sys.Serialization.FindSerializerFor(credit);
        Assert.IsType<HyperionSerializer>(serializer);
        Assert.Equal(credit, serializer.FromBinary(serializer.ToBinary(credit), typeof(DeviceCredit)));
    }
}
