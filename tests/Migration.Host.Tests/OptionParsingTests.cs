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
