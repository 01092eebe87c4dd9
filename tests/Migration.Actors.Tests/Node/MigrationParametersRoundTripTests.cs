using System.Reflection;
using Migration.Actors.Settings;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>
/// MigrationParameters.From (source side) and ForDestination (destination side) list the per-migration fields twice;
/// this checks they agree field by field, so a field added to one list and forgotten in the other fails here.
/// </summary>
public sealed class MigrationParametersRoundTripTests
{
    [Fact]
    public void Every_parameter_the_source_sends_arrives_in_the_destinations_settings()
    {
        var source = new MigrationSettings
        {
            Channels = 7,
            Codec = CodecId.Zstd,
            CodecLevel = 3,
            ZeroPageDetection = false,
            PacketPages = 64,
            ChunkSize = 512 * 1024,
            DeviceBufferBudget = 6L << 20,
            PrefaultDestination = true,
            ChannelIdleTimeout = TimeSpan.FromSeconds(17),
            ChannelReconnectTimeout = TimeSpan.FromSeconds(23),
            CommitTimeout = TimeSpan.FromSeconds(29),
            Inject =
            [
                new FaultInjection(FaultInjection.SlowLoad, "load", 0, "gpu0", 12.5),
                new FaultInjection(FaultInjection.Hold, "verify", 0, null, 1500),
                new FaultInjection(FaultInjection.Hold, "setup", 0, null, 2500),
                new FaultInjection(FaultInjection.Hold, "resume", 0, null, 3500),
            ],
        };
        var parameters = MigrationParameters.From(source);
        var node = new MigrationSettings();
        var effective = parameters.ForDestination(node, budgetCap: 1L << 30, out var refusal);
        Assert.True(effective is not null, refusal);

        var settingsProperties = typeof(MigrationSettings).GetProperties(BindingFlags.Public | BindingFlags.Instance).ToDictionary(p => p.Name);
        var compared = 0;
        foreach (var p in typeof(MigrationParameters).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!settingsProperties.TryGetValue(p.Name, out var s))
            {
                continue; // SlowLoads, HoldVerifyMs, HoldSetupMs, HoldResumeMs: carried in Inject, checked below
            }

            Assert.True(Equals(s.GetValue(source), s.GetValue(effective)), $"{p.Name}: source {s.GetValue(source)}, destination {s.GetValue(effective)}");
            Assert.False(Equals(s.GetValue(node), s.GetValue(effective)), $"{p.Name}: the test value must differ from the node's default");
            compared++;
        }

        Assert.Equal(11, compared);
        Assert.Equal(12.5, MigrationParameters.LoadDelays(effective!)["gpu0"]);
        Assert.Contains(effective!.Inject, f => f.Kind == FaultInjection.Hold && f.Phase == "verify" && f.Value == 1500);
        Assert.Contains(effective.Inject, f => f.Kind == FaultInjection.Hold && f.Phase == "setup" && f.Value == 2500);
        Assert.Contains(effective.Inject, f => f.Kind == FaultInjection.Hold && f.Phase == "resume" && f.Value == 3500);
    }
}
