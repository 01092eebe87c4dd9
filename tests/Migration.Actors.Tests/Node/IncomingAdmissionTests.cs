using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Actors.Tests.Node;

/// <summary>A destination checks a PrepareIncoming like wire input and applies its own limits (IncomingAdmission).</summary>
public sealed class IncomingAdmissionTests
{
    private static readonly GuestSpec Spec = new("vm", 4L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 1 << 20, 0)]);
    private static readonly MigrationSettings Node = new() { MaxDeviceBufferBudget = 8L << 20, ListenerHost = "127.0.0.9", ConnectTimeout = TimeSpan.FromSeconds(3) };
    private static readonly MigrationParameters Asked = MigrationParameters.From(new MigrationSettings { Channels = 3, ChunkSize = 256 * 1024, DeviceBufferBudget = 4L << 20 });

    private static PrepareIncoming Prepare(MigrationParameters parameters, GuestSpec? spec = null) =>
        new(Guid.NewGuid(), spec ?? Spec, parameters, ActorRefs.Nobody);

    [Fact]
    public void Effective_settings_are_the_nodes_own_plus_the_parameters()
    {
        Assert.True(IncomingAdmission.TryAdmit(Prepare(Asked), Node, 1L << 30, out var s, out var why), why);
        Assert.Equal(3, s.Channels);
        Assert.Equal(256 * 1024, s.ChunkSize);
        Assert.Equal(4L << 20, s.DeviceBufferBudget);
        Assert.Equal("127.0.0.9", s.ListenerHost); // node keys never come from the source
        Assert.Equal(TimeSpan.FromSeconds(3), s.ConnectTimeout);
    }

    [Fact]
    public void The_destination_side_holds_of_the_fault_drills_reach_the_destinations_settings()
    {
        FaultInjection.TryParse("hold:setup=40000", out var setup, out _);
        FaultInjection.TryParse("hold:verify=5000", out var verify, out _);
        var asked = MigrationParameters.From(new MigrationSettings { Inject = [setup, verify] });
        Assert.Equal(40_000, asked.HoldSetupMs);
        Assert.True(IncomingAdmission.TryAdmit(Prepare(asked), Node, 1L << 30, out var s, out var why), why);
        Assert.Contains(s.Inject, f => f.Kind == FaultInjection.Hold && f.Phase == "setup" && f.Value == 40_000);
        Assert.Contains(s.Inject, f => f.Kind == FaultInjection.Hold && f.Phase == "verify" && f.Value == 5000);

        Assert.False(IncomingAdmission.TryAdmit(Prepare(asked with { HoldSetupMs = double.NaN }), Node, 1L << 30, out _, out var refusal));
        Assert.Contains("hold:setup = NaN ms; expected 0..600000", refusal);
    }

    [Fact]
    public void An_oversized_budget_request_is_capped_at_the_nodes_maximum()
    {
        Assert.True(IncomingAdmission.TryAdmit(Prepare(Asked with { DeviceBufferBudget = 1L << 40 }), Node, 1L << 30, out var s, out var why), why);
        Assert.Equal(8L << 20, s.DeviceBufferBudget);
    }

    [Fact]
    public void Without_a_configured_maximum_the_cap_is_an_eighth_of_the_memory_capacity()
    {
        Assert.Equal(16L << 20, IncomingAdmission.BudgetCap(new MigrationSettings(), 128L << 20));
        Assert.True(IncomingAdmission.TryAdmit(Prepare(Asked with { DeviceBufferBudget = 1L << 40 }), new MigrationSettings(), 128L << 20, out var s, out _));
        Assert.Equal(16L << 20, s.DeviceBufferBudget);
    }

    [Fact]
    public void A_chunk_larger_than_the_cap_is_refused_with_both_figures()
    {
        var p = Asked with { ChunkSize = 16 << 20, DeviceBufferBudget = 32L << 20 };
        Assert.False(IncomingAdmission.TryAdmit(Prepare(p), Node, 1L << 30, out _, out var why));
        Assert.Contains("chunk-size = 16777216 bytes exceeds this node's max-device-buffer-budget = 8388608 bytes", why);
    }

    public static TheoryData<string, MigrationParameters> BadParameters => new()
    {
        { "channels = 0; expected 1..64", Asked with { Channels = 0 } },
        { "codec id 9; expected 1 (None)", Asked with { Codec = (CodecId)9 } },
        { "codec-level = 99", Asked with { CodecLevel = 99 } },
        { "packet-pages = 5000; expected 1..1024", Asked with { PacketPages = 5000 } },
        { "chunk-size = 100 bytes", Asked with { ChunkSize = 100 } },
        { "device-buffer-budget = 10 bytes; expected at least chunk-size", Asked with { DeviceBufferBudget = 10 } },
        { "channel-idle-timeout", Asked with { ChannelIdleTimeout = TimeSpan.FromDays(3) } },
        { "commit-timeout", Asked with { CommitTimeout = TimeSpan.Zero } },
        { "channel-reconnect-timeout", Asked with { ChannelReconnectTimeout = TimeSpan.FromSeconds(-1) } },
        { "slow-load for device 'nope'; expected one of the guest's devices (gpu0)", Asked with { SlowLoads = [new SlowLoad("nope", 1)] } },
        { "slow-load gpu0 = NaN ms/MiB", Asked with { SlowLoads = [new SlowLoad("gpu0", double.NaN)] } },
        { "expected 0..64", Asked with { SlowLoads = Enumerable.Repeat(new SlowLoad("gpu0", 1), 65).ToArray() } },
    };

    [Theory]
    [MemberData(nameof(BadParameters))]
    public void A_parameter_out_of_range_is_refused_saying_what_arrived_and_what_was_expected(string expected, MigrationParameters p)
    {
        Assert.False(IncomingAdmission.TryAdmit(Prepare(p), Node, 1L << 30, out _, out var why));
        Assert.Contains("invalid migration parameter from the source", why);
        Assert.Contains(expected, why);
    }

    public static TheoryData<string, GuestSpec> BadSpecs => new()
    {
        { "expected 1..64 printable characters", Spec with { Id = "a\nb" } },
        { "expected 1..64 printable characters", Spec with { Id = new string('x', 65) } },
        { "RAM fill pattern 77", Spec with { Fill = (Migration.Devices.Workload.RamFillPattern)77 } },
        { "expected 0..64 devices", Spec with { Devices = Enumerable.Range(0, 65).Select(i => new DeviceSpec($"d{i}", DeviceKind.Structured)).ToArray() } },
        { "load delay NaN ms/MiB", Spec with { Devices = [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 1 << 20, 0, LoadDelayMsPerMiB: double.NaN)] } },
        { "instance -1", Spec with { Devices = [new DeviceSpec("gpu0", DeviceKind.Vfio, -1, 1 << 20, 0)] } },
        { "not a positive multiple of 4 KiB", Spec with { RamBytes = 4097 } },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void A_guest_spec_out_of_range_is_refused(string expected, GuestSpec spec)
    {
        Assert.False(IncomingAdmission.TryAdmit(Prepare(MigrationParameters.From(new MigrationSettings { ChunkSize = 256 * 1024, DeviceBufferBudget = 1 << 20 }), spec), Node, 1L << 30, out _, out var why));
        Assert.Contains("invalid guest spec from the source", why);
        Assert.Contains(expected, why);
    }

    [Fact]
    public void A_prepare_without_parameters_is_refused()
    {
        Assert.False(IncomingAdmission.TryAdmit(new PrepareIncoming(Guid.NewGuid(), Spec, null!, ActorRefs.Nobody), Node, 1L << 30, out _, out var why));
        Assert.Contains("without parameters", why);
    }
}
