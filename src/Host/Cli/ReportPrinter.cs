using System.Globalization;
using System.Text.Json;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Spectre.Console;

namespace Migration.Host.Cli;

/// <summary>Renders progress lines and the final report, and writes the JSON report.</summary>
public static class ReportPrinter
{
    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static string ProgressLine(MigrationProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"[{p.Phase,-14} it {p.Iteration,2}] {p.Percent,5:0.0}%  sent {ByteSize.Format(p.BytesSent),10}  {p.RateMiBps,7:0} MiB/s  " +
        $"remaining {ByteSize.Format(p.RemainingBytes),10}  exp. downtime {p.ExpectedDowntimeMs,6:0} ms  " +
        $"device buffer {ByteSize.Format(p.BufferedDeviceBytes)}/{ByteSize.Format(p.DeviceBufferBudgetBytes)}") + ProgressExtras(p);

    /// <summary>Time left and the auto-converge throttle, when known.</summary>
    private static string ProgressExtras(MigrationProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"{(p.EtaMs >= 0 ? $"  eta {p.EtaMs / 1000:0.0} s" : "")}{(p.ThrottlePercent > 0 ? $"  throttle {p.ThrottlePercent} %" : "")}");

    public static void Print(MigrationReport r)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("figure").AddColumn(new TableColumn("value").RightAligned());
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("status", r.Status + (r.Verified ? " (verified)" : ""));
        Row("channels / codec", $"{r.Channels} / {r.Codec}");
        Row("total time", $"{r.TotalMs:0} ms (setup {r.SetupMs:0} ms)");
        Row("downtime", $"{r.DowntimeMs:0.0} ms (limit {r.DowntimeLimitMs:0} ms, expected {r.ExpectedDowntimeMs:0} ms)");
        if (r.ExpectedDowntimeTerms is not null)
        {
            Row("expected downtime terms", r.ExpectedDowntimeTerms);
        }

        Row("iterations", r.Iterations + (r.SwitchoverReason is { } reason ? $" (switchover: {reason})" : r.ForcedSwitchover ? " (switchover forced: did not converge)" : ""));
        if (r.MaxThrottlePercent > 0)
        {
            Row("auto-converge throttle (max)", $"{r.MaxThrottlePercent} %");
        }

        Row("precopy throughput", $"{r.PrecopyThroughputMiBps:0} MiB/s" + (r.MaxBandwidth > 0 ? $" (limit {ByteSize.Format(r.MaxBandwidth)}/s)" : ""));
        Row("guest RAM", ByteSize.Format(r.RamBytes));
        Row("RAM transferred", $"{ByteSize.Format(r.RamTransferredBytes)} ({r.NormalPages} pages, {r.ZeroPages} zero pages)");
        if (r.UncompressedPages > 0)
        {
            Row("sent uncompressed", $"{r.UncompressedPages} of {r.NormalPages} pages (not worth compressing)");
        }

        Row("device state", ByteSize.Format(r.DeviceStateBytes));
        Row("wire bytes", ByteSize.Format(r.WireBytes));
        Row("throughput", $"{r.ThroughputMiBps:0} MiB/s");
        Row("device buffer peak / budget", $"{ByteSize.Format(r.PeakDeviceBufferBytes)} / {ByteSize.Format(r.DeviceBufferBudgetBytes)}");
        Row("out-of-order chunks", r.OutOfOrderChunks.ToString(CultureInfo.InvariantCulture));
        if (r.ChannelReconnects > 0)
        {
            Row("channel reconnects", $"{r.ChannelReconnects} (resent {r.ResentPages} pages, {r.ResentDeviceChunks} device chunks)");
        }
        if (r.Error is not null)
        {
            Row("error", r.Error);
        }

        AnsiConsole.Write(table);
        if (r.Devices.Count > 0)
        {
            var devices = new Table().Border(TableBorder.Rounded)
                .AddColumns("device", "kind", "state", "precopy", "chunks", "out of order", "peak buffered", "digest");
            foreach (var d in r.Devices)
            {
                devices.AddRow(Markup.Escape(d.Id), d.Kind, ByteSize.Format(d.StateBytes), ByteSize.Format(d.PrecopyBytes),
                    d.Chunks.ToString(CultureInfo.InvariantCulture), d.OutOfOrderChunks.ToString(CultureInfo.InvariantCulture),
                    ByteSize.Format(d.PeakBufferedBytes), d.DigestMatch ? "match" : r.Status == "completed" ? "MISMATCH" : "-");
            }

            AnsiConsole.Write(devices);
        }
    }

    public static void WriteJson(MigrationReport r, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        File.WriteAllText(path, JsonSerializer.Serialize(r, JsonOptions));
    }
}
