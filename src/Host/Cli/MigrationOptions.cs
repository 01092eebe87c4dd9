using System.CommandLine;
using System.Globalization;
using Migration.Actors.Settings;
using Migration.Transport.Codecs;

namespace Migration.Host.Cli;

/// <summary>
/// The per-migration options shared by `demo` and `migrate`: --channels, --codec, --device-budget, --chunk-size,
/// --downtime-limit, --max-iterations, --max-bandwidth, --auto-converge, --json. Values override the node's HOCON defaults; bad values produce one clear message.
/// </summary>
public sealed class MigrationOptions
{
    public Option<int?> Channels { get; } = new("--channels") { Description = "Parallel TCP channels (1..64)" };
    public Option<string?> Codec { get; } = new("--codec") { Description = "RAM codec: none, zstd or lz4 (device state is never compressed)" };
    public Option<string?> DeviceBudget { get; } = new("--device-budget") { Description = "Destination bytes for out-of-order device chunks (e.g. 64MiB)" };
    public Option<string?> ChunkSize { get; } = new("--chunk-size") { Description = "Device-state chunk size (e.g. 1MiB)" };
    public Option<string?> DowntimeLimit { get; } = new("--downtime-limit") { Description = "Downtime limit in milliseconds" };
    public Option<int?> MaxIterations { get; } = new("--max-iterations") { Description = "Switch over after this many precopy iterations at the latest" };
    public Option<string?> MaxBandwidth { get; } = new("--max-bandwidth")
    {
        Description = "Precopy bandwidth limit per second, all channels together (e.g. 100MiB; 0 = unlimited); the stop-copy phase runs at full speed",
    };
    public Option<bool> AutoConverge { get; } = new("--auto-converge")
    {
        Description = "Throttle the guest in growing steps when precopy does not converge (migration.auto-converge)",
    };
    public Option<string?> Json { get; } = new("--json") { Description = "Write the final report as JSON to this path" };
    public Option<string?> Timeline { get; } = new("--timeline") { Description = "Draw the migration's timeline (throughput, dirty RAM, device buffer, downtime) to this SVG file" };
    public Option<string[]> Inject { get; } = new("--inject")
    {
        Description = "Inject a fault: drop-channel:N@precopy|stopcopy, corrupt-packet@precopy|stopcopy, slow-load:DEVICE[=MS], " +
                      "drop-commit (the source skips CommitMigration; the destination resolves it by asking the source), " +
                      "hold:setup|verify|commit|resume=MS (widen the setup, verifying, committing or destination-resume window for fault drills) (repeatable)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Channels);
        command.Options.Add(Codec);
        command.Options.Add(DeviceBudget);
        command.Options.Add(ChunkSize);
        command.Options.Add(DowntimeLimit);
        command.Options.Add(MaxIterations);
        command.Options.Add(MaxBandwidth);
        command.Options.Add(AutoConverge);
        command.Options.Add(Json);
        command.Options.Add(Timeline);
        command.Options.Add(Inject);
    }

    /// <summary>Applies the options to <paramref name="defaults"/>; false with a message on a bad value.</summary>
    public bool TryApply(ParseResult r, MigrationSettings defaults, out MigrationSettings settings, out string error)
    {
        settings = defaults;
        error = "";
        if (r.GetValue(Channels) is { } channels)
        {
            settings = settings with { Channels = channels };
        }

        if (r.GetValue(Codec) is { } codecName)
        {
            if (!RamCodecRegistry.TryParse(codecName, out var codec))
            {
                error = $"--codec '{codecName}': expected none, zstd or lz4";
                return false;
            }

            settings = settings with { Codec = codec };
        }

        if (r.GetValue(DeviceBudget) is { } budgetText)
        {
            if (!ByteSize.TryParse(budgetText, out var budget, out var e))
            {
                error = $"--device-budget: {e}";
                return false;
            }

            settings = settings with { DeviceBufferBudget = budget };
        }

        if (r.GetValue(ChunkSize) is { } chunkText)
        {
            if (!ByteSize.TryParse(chunkText, out var chunk, out var e) || chunk > int.MaxValue)
            {
                error = $"--chunk-size: {(e.Length > 0 ? e : "too large")}";
                return false;
            }

            settings = settings with { ChunkSize = (int)chunk };
        }

        if (r.GetValue(DowntimeLimit) is { } limitText)
        {
            if (!double.TryParse(limitText.Replace("ms", "", StringComparison.OrdinalIgnoreCase), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) || ms <= 0)
            {
                error = $"--downtime-limit '{limitText}': expected a positive number of milliseconds";
                return false;
            }

            settings = settings with { DowntimeLimit = TimeSpan.FromMilliseconds(ms) };
        }

        if (r.GetValue(Inject) is { Length: > 0 } injects)
        {
            var faults = new List<FaultInjection>();
            foreach (var text in injects)
            {
                if (!FaultInjection.TryParse(text, out var fault, out var e))
                {
                    error = e;
                    return false;
                }

                faults.Add(fault);
            }

            settings = settings with { Inject = faults };
        }

        if (r.GetValue(MaxBandwidth) is { } bandwidthText)
        {
            if (!ByteSize.TryParse(bandwidthText, out var bandwidth, out var e))
            {
                error = $"--max-bandwidth: {e}";
                return false;
            }

            settings = settings with { MaxBandwidth = bandwidth };
        }

        if (r.GetValue(AutoConverge))
        {
            settings = settings with { AutoConverge = settings.AutoConverge with { Enabled = true } };
        }

        if (r.GetValue(MaxIterations) is { } max)
        {
            settings = settings with { MaxIterations = max };
        }

        try
        {
            settings.Validate();
            return true;
        }
        catch (ArgumentException e)
        {
            error = e.Message;
            return false;
        }
    }
}
