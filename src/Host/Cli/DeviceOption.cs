using System.Globalization;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;

namespace Migration.Host.Cli;

/// <summary>
/// Parses `--device` values:
/// <c>vfio:ID:SIZE[:precopy=SIZE][:dirty=SIZE][:load-delay=MS]</c> (a VFIO-style device of SIZE bytes of state,
/// PRECOPY of it available while the guest runs — default 7/8 —, changing at DIRTY bytes/s while running, and
/// loading with MS milliseconds of delay per MiB) and <c>vmstate:ID</c> (a small structured device).
/// </summary>
public static class DeviceOption
{
    public static bool TryParse(string text, int seed, out DeviceSpec spec, out string error)
    {
        spec = null!;
        error = "";
        var parts = text.Split(':');
        var kind = parts[0].ToLowerInvariant();
        if (kind == "vmstate")
        {
            if (parts.Length != 2 || parts[1].Length == 0)
            {
                error = $"--device '{text}': expected vmstate:ID";
                return false;
            }

            spec = new DeviceSpec(parts[1], DeviceKind.Structured, Seed: seed);
            return Valid(spec, text, out error);
        }

        if (kind != "vfio")
        {
            error = $"--device '{text}': unknown device kind '{parts[0]}'; expected vfio:ID:SIZE[:precopy=SIZE] or vmstate:ID";
            return false;
        }

        if (parts.Length < 3 || parts[1].Length == 0)
        {
            error = $"--device '{text}': expected vfio:ID:SIZE[:precopy=SIZE][:dirty=SIZE][:load-delay=MS]";
            return false;
        }

        if (!ByteSize.TryParse(parts[2], out var size, out var sizeError))
        {
            error = $"--device '{text}': {sizeError}";
            return false;
        }

        long precopy = size / 8 * 7;
        long dirty = 0;
        double delay = 0;
        foreach (var option in parts.Skip(3))
        {
            var kv = option.Split('=', 2);
            if (kv.Length != 2)
            {
                error = $"--device '{text}': option '{option}' is not key=value";
                return false;
            }

            switch (kv[0].ToLowerInvariant())
            {
                case "precopy" when ByteSize.TryParse(kv[1], out var p, out _):
                    precopy = p;
                    break;
                case "dirty" when ByteSize.TryParse(kv[1], out var d, out _):
                    dirty = d;
                    break;
                case "load-delay" when double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0:
                    delay = ms;
                    break;
                default:
                    error = $"--device '{text}': bad option '{option}'; expected precopy=SIZE, dirty=SIZE or load-delay=MS";
                    return false;
            }
        }

        spec = new DeviceSpec(parts[1], DeviceKind.Vfio, 0, size, precopy, seed, dirty, delay);
        return Valid(spec, text, out error);
    }

    private static bool Valid(DeviceSpec spec, string text, out string error)
    {
        try
        {
            spec.Validate();
            error = "";
            return true;
        }
        catch (ArgumentException e)
        {
            error = $"--device '{text}': {e.Message}";
            return false;
        }
    }
}
