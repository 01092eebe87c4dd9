using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Host.Cli;
using Xunit;

namespace Migration.Host.Tests;

public sealed class OptionParsingTests
{
    [Theory]
    [InlineData("4096", 4096L)]
    [InlineData("4KiB", 4096L)]
    [InlineData("1MiB", 1L << 20)]
    [InlineData("1.5GiB", 3L << 29)]
    [InlineData("256mib", 256L << 20)]
    [InlineData("2G", 2L << 30)]
    [InlineData("512B", 512L)]
    public void Sizes_accept_binary_units(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out var bytes, out var error), error);
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("lots")]
    [InlineData("12XB")]
    [InlineData("-1MiB")]
    [InlineData("0.5B")]
    public void Bad_sizes_are_refused_with_a_message(string text)
    {
        Assert.False(ByteSize.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrWhiteSpace(error));
    }

    [Fact]
    public void A_vfio_device_defaults_to_seven_eighths_precopy()
    {
        Assert.True(DeviceOption.TryParse("vfio:gpu0:256MiB", 1, out var spec, out var error), error);
        Assert.Equal(DeviceKind.Vfio, spec.Kind);
        Assert.Equal("gpu0", spec.Id);
        Assert.Equal(256L << 20, spec.StateBytes);
        Assert.Equal(224L << 20, spec.PrecopyBytes);
    }

    [Fact]
    public void A_vfio_device_takes_precopy_dirty_and_load_delay()
    {
        Assert.True(DeviceOption.TryParse("vfio:a:64MiB:precopy=0:dirty=1MiB:load-delay=2.5", 1, out var spec, out var error), error);
        Assert.Equal(0, spec.PrecopyBytes);
        Assert.Equal(1L << 20, spec.DirtyRateBytesPerSecond);
        Assert.Equal(2.5, spec.LoadDelayMsPerMiB);
    }

    [Fact]
    public void A_vmstate_device_parses()
    {
        Assert.True(DeviceOption.TryParse("vmstate:net0", 1, out var spec, out var error), error);
        Assert.Equal(DeviceKind.Structured, spec.Kind);
    }

    [Theory]
    [InlineData("gpu:a:1MiB", "unknown device kind")]
    [InlineData("vfio:a", "expected vfio:ID:SIZE")]
    [InlineData("vfio:a:huge", "is not a size")]
    [InlineData("vfio:a:1MiB:precopy=2MiB", "precopy")]
    [InlineData("vfio:a:1MiB:speed=3", "bad option")]
    [InlineData("vmstate:", "expected vmstate:ID")]
    public void Bad_devices_are_refused_naming_the_problem(string text, string expected)
    {
        Assert.False(DeviceOption.TryParse(text, 1, out _, out var error));
        Assert.Contains(expected, error);
    }

    [Theory]
    [InlineData("--ram", "lots")]
    [InlineData("--ram", "4097")]
    [InlineData("--codec", "gzip")]
    [InlineData("--channels", "0")]
    [InlineData("--channels", "65")]
    [InlineData("--device-budget", "4KiB")]
    [InlineData("--downtime-limit", "-5")]
    [InlineData("--device", "vfio:x")]
    public async Task The_demo_refuses_bad_values_with_exit_code_2_before_starting_anything(string option, string value)
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            var code = await Program.Main(["demo", option, value]);
            Assert.Equal(2, code);
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.StartsWith("error: ", error.ToString());
    }
}

/// <summary>The convergence options of `demo`/`migrate` and of `set`.</summary>
public sealed class ConvergenceOptionParsingTests
{
    [Fact]
    public void Max_bandwidth_and_auto_converge_apply_to_the_settings()
    {
        var options = new MigrationOptions();
        var command = new System.CommandLine.Command("t");
        options.AddTo(command);
        var r = command.Parse("--max-bandwidth 100MiB --auto-converge");
        Assert.True(options.TryApply(r, new MigrationSettings(), out var s, out var error), error);
        Assert.Equal(100L << 20, s.MaxBandwidth);
        Assert.True(s.AutoConverge.Enabled);
        Assert.Equal(20, s.AutoConverge.InitialPercent);

        var defaults = command.Parse("");
        Assert.True(options.TryApply(defaults, new MigrationSettings(), out var d, out _));
        Assert.Equal(0, d.MaxBandwidth);
        Assert.False(d.AutoConverge.Enabled);

        Assert.False(options.TryApply(command.Parse("--max-bandwidth fast"), new MigrationSettings(), out _, out error));
        Assert.Contains("--max-bandwidth", error);
    }

    [Fact]
    public void Set_parses_each_value_and_refuses_bad_or_missing_ones()
    {
        var m = LiveChangeCommands.Parse("250ms", "64MiB", "off");
        Assert.Equal(250, m.DowntimeLimitMs);
        Assert.Equal(64L << 20, m.MaxBandwidth);
        Assert.False(m.AutoConverge);
        Assert.Null(LiveChangeCommands.Parse(null, null, "on").DowntimeLimitMs);

        Assert.Equal(2, Assert.Throws<CliException>(() => LiveChangeCommands.Parse("-1", null, null)).ExitCode);
        Assert.Equal(2, Assert.Throws<CliException>(() => LiveChangeCommands.Parse(null, "lots", null)).ExitCode);
        Assert.Equal(2, Assert.Throws<CliException>(() => LiveChangeCommands.Parse(null, null, "maybe")).ExitCode);
        Assert.Contains("nothing to change", Assert.Throws<CliException>(() => LiveChangeCommands.Parse(null, null, null)).Message);
    }

    [Fact]
    public void The_auto_converge_section_of_hocon_is_read_and_checked()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("""
            migration {
              max-bandwidth = 50MiB
              auto-converge { enabled = on, initial = 30, increment = 5, max = 90 }
            }
            """);
        var s = MigrationSettings.FromConfig(config);
        Assert.Equal(50L << 20, s.MaxBandwidth);
        Assert.Equal(new AutoConvergeSettings { Enabled = true, InitialPercent = 30, IncrementPercent = 5, MaxPercent = 90 }, s.AutoConverge);

        var bad = Akka.Configuration.ConfigurationFactory.ParseString("migration.auto-converge { initial = 50, max = 40 }");
        Assert.Contains("auto-converge.max", Assert.Throws<ArgumentException>(() => MigrationSettings.FromConfig(bad)).Message);
    }

    [Fact]
    public void The_cli_request_timeout_defaults_to_10_s_and_refuses_values_out_of_range()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), ClusterClient.RequestTimeoutFrom(Migration.Actors.Node.NodeHost.ReferenceConfig()));
        var slow = Akka.Configuration.ConfigurationFactory.ParseString("migration.cli.request-timeout = 45s");
        Assert.Equal(TimeSpan.FromSeconds(45), ClusterClient.RequestTimeoutFrom(slow));
        foreach (var bad in new[] { "0s", "500ms", "11m" })
        {
            var config = Akka.Configuration.ConfigurationFactory.ParseString($"migration.cli.request-timeout = {bad}");
            Assert.Contains("expected 1 s to 10 min", Assert.Throws<ArgumentException>(() => ClusterClient.RequestTimeoutFrom(config)).Message);
        }
    }
}
