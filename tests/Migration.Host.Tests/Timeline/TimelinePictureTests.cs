using System.Text.Json;
using System.Xml.Linq;
using Migration.Actors.Messages;
using Migration.Host.Timeline;
using Xunit;

namespace Migration.Host.Tests.Timeline;

/// <summary>
/// The timeline picture: the series are derived from the report's samples and events as documented, and the SVG drawn
/// from a recorded demo report (Timeline/recorded-report.json, written by `demo --json`) has its panels, axes and the
/// labelled downtime window.
/// </summary>
public sealed class TimelinePictureTests
{
    private static MigrationReport Recorded() => JsonSerializer.Deserialize<MigrationReport>(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Timeline", "recorded-report.json")),
        new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase })!;

    private static TimelineSample At(double ms, long ram, long device, long dirty = 0, long buffer = 0) => new()
    {
        TimeMs = ms, Phase = "precopy", RamBytesSent = ram, DeviceBytesSent = device, RemainingDirtyBytes = dirty,
        DeviceBufferBytes = buffer, DeviceBufferBudgetBytes = 8 << 20,
    };

    [Fact]
    public void Throughput_is_the_byte_delta_over_the_time_delta_per_kind_and_the_downtime_runs_from_stop_to_resume()
    {
        var report = new MigrationReport
        {
            VmId = "g1",
            Timeline = [At(0, 0, 0, dirty: 10 << 20), At(500, 50 << 20, 10 << 20, dirty: 4 << 20, buffer: 2 << 20), At(1500, 150 << 20, 10 << 20), At(2000, 160 << 20, 30 << 20)],
            TimelineEvents =
            [
                new TimelineEvent { TimeMs = 0, Kind = TimelineEventKinds.Iteration, Value = 1 },
                new TimelineEvent { TimeMs = 800, Kind = TimelineEventKinds.Reconnect, Value = 2 },
                new TimelineEvent { TimeMs = 1500, Kind = TimelineEventKinds.Stop },
                new TimelineEvent { TimeMs = 1500, Kind = TimelineEventKinds.Iteration, Value = 2 },
                new TimelineEvent { TimeMs = 1750, Kind = TimelineEventKinds.Resume },
            ],
        };

        var s = TimelineSeries.From(report);

        Assert.Equal([0, 0.5, 1.5, 2.0], s.TimeS);
        Assert.Equal([0, 100, 100, 20], s.RamMiBps);
        Assert.Equal([0, 20, 0, 40], s.DeviceMiBps);
        Assert.Equal([10, 4, 0, 0], s.RemainingDirtyMiB);
        Assert.Equal([0, 2, 0, 0], s.DeviceBufferMiB);
        Assert.All(s.DeviceBudgetMiB, b => Assert.Equal(8, b));
        Assert.Equal([(0.0, 1), (1.5, 2)], s.Iterations);
        Assert.Equal([(0.8, 2)], s.Reconnects);
        Assert.Equal((1.5, 1.75), s.Downtime);
        Assert.Contains("guest g1", s.Title);
    }

    [Fact]
    public void A_guest_that_was_never_stopped_has_no_downtime_window()
    {
        var s = TimelineSeries.From(new MigrationReport { Timeline = [At(0, 0, 0), At(250, 1 << 20, 0)], Status = "cancelled" });
        Assert.Null(s.Downtime);
        Assert.Equal([0, 4], s.RamMiBps);
    }

    [Fact]
    public void The_picture_of_a_recorded_demo_migration_has_three_panels_with_units_and_the_labelled_downtime()
    {
        var report = Recorded();
        Assert.True(report.Timeline.Count >= 10, $"recorded report has {report.Timeline.Count} samples");
        var series = TimelineSeries.From(report);
        Assert.Equal(report.Timeline.Count, series.TimeS.Length);
        Assert.NotNull(series.Downtime);
        Assert.Equal(report.DowntimeMs, 1000 * (series.Downtime!.Value.EndS - series.Downtime.Value.StartS), 1);
        Assert.Equal(report.Iterations, series.Iterations.Length);
        // No rate is taken over a sliver of time: none exceeds what the whole migration moved in one sample interval.
        Assert.All(series.RamMiBps, r => Assert.InRange(r, 0, report.Timeline[^1].RamBytesSent / (double)(1 << 20) / 0.2));

        var svg = TimelinePicture.Render(report);
        var doc = XDocument.Parse(svg);
        var texts = doc.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToArray();
        Assert.Contains("downtime", texts);
        Assert.Contains(texts, t => t.Contains($"guest {report.VmId}", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.Contains("4 channels, codec none", StringComparison.Ordinal));
        foreach (var axis in new[] { "throughput (MiB/s)", "remaining dirty RAM (MiB)", "device buffer (MiB)", "time since the migration started (s)" })
        {
            Assert.Contains(axis, texts);
        }

        foreach (var legend in new[] { "RAM", "device state", "dirty RAM not yet sent", "held by the destination", "budget" })
        {
            Assert.Contains(legend, texts);
        }

        var path = Path.Combine(Path.GetTempPath(), $"timeline-{Guid.NewGuid():N}.svg");
        TimelinePicture.Save(report, path);
        Assert.Contains("downtime", XDocument.Parse(File.ReadAllText(path)).Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()));
        File.Delete(path);
    }
}

/// <summary>The Grafana dashboard in docs/ queries only families a node serves.</summary>
public sealed class GrafanaDashboardTests
{
    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_a_family_a_node_serves()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Migration.sln")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        var text = File.ReadAllText(Path.Combine(dir!.FullName, "docs", "grafana-dashboard.json"));
        using var _ = JsonDocument.Parse(text);
        var used = System.Text.RegularExpressions.Regex.Matches(text, @"migration_[a-z_]+").Select(m => m.Value).Distinct().ToArray();
        Assert.NotEmpty(used);
        using var metrics = new Migration.Actors.Metrics.NodeMetrics();
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream);
        var scrape = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        foreach (var name in used)
        {
            var family = System.Text.RegularExpressions.Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.Contains($"# TYPE {family} ", scrape);
        }
    }
}
