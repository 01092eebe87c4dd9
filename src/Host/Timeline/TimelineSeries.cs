using Migration.Actors.Messages;
using Migration.Actors.Settings;

namespace Migration.Host.Timeline;

/// <summary>
/// The series a timeline picture is drawn from, derived from a report (pure): time in seconds since the migration
/// started; throughput of RAM and of device state in MiB/s from the byte deltas between consecutive samples (plotted
/// at the end of each interval); remaining dirty RAM, device buffer held and its budget in MiB; throttle percent; and
/// the events: iteration starts, reconnects, throttle steps and the downtime window (stop to resume; to the end of the
/// timeline when the resume was not confirmed).
/// </summary>
public sealed record TimelineSeries
{
    private const double MiB = 1 << 20;

    /// <summary>Guest, nodes and outcome (first title line).</summary>
    public string Title { get; init; } = "";
    /// <summary>The migration's settings (second title line).</summary>
    public string Subtitle { get; init; } = "";
    public double[] TimeS { get; init; } = [];
    public double[] RamMiBps { get; init; } = [];
    public double[] DeviceMiBps { get; init; } = [];
    public double[] RemainingDirtyMiB { get; init; } = [];
    public double[] DeviceBufferMiB { get; init; } = [];
    public double[] DeviceBudgetMiB { get; init; } = [];
    public double[] ThrottlePercent { get; init; } = [];
    public (double TimeS, int Iteration)[] Iterations { get; init; } = [];
    public (double TimeS, int Channel)[] Reconnects { get; init; } = [];
    public (double TimeS, int Percent)[] ThrottleSteps { get; init; } = [];
    /// <summary>Start and end of the downtime in seconds, or null when the guest was never stopped.</summary>
    public (double StartS, double EndS)? Downtime { get; init; }

    public static TimelineSeries From(MigrationReport r)
    {
        var samples = r.Timeline;
        var n = samples.Count;
        var time = samples.Select(x => x.TimeMs / 1000).ToArray();
        var ram = new double[n];
        var device = new double[n];
        // A forced sample (the stop, the end) can come milliseconds after a tick: a rate over such a sliver is noise
        // (a few MiB over 1 ms reads as GiB/s). Each rate spans back at least 80% of the usual sample interval.
        var gaps = time.Zip(time.Skip(1), (a, b) => b - a).Where(d => d > 0).Order().ToArray();
        var window = gaps.Length == 0 ? 0 : gaps[gaps.Length / 2] * 0.8;
        for (var i = 1; i < n; i++)
        {
            var j = i - 1;
            while (j > 0 && time[i] - time[j] < window)
            {
                j--;
            }

            var dt = time[i] - time[j];
            if (dt > 0)
            {
                ram[i] = (samples[i].RamBytesSent - samples[j].RamBytesSent) / MiB / dt;
                device[i] = (samples[i].DeviceBytesSent - samples[j].DeviceBytesSent) / MiB / dt;
            }
        }

        var events = r.TimelineEvents;
        var stop = events.FirstOrDefault(e => e.Kind == TimelineEventKinds.Stop);
        var resume = events.FirstOrDefault(e => e.Kind == TimelineEventKinds.Resume);
        (double, double)? downtime = stop is null ? null : (stop.TimeMs / 1000, (resume?.TimeMs ?? samples.LastOrDefault()?.TimeMs ?? stop.TimeMs) / 1000);
        return new TimelineSeries
        {
            Title = $"guest {r.VmId}: {ShortNode(r.Source)} -> {ShortNode(r.Destination)}: {r.Status}{(r.Verified ? " (verified)" : "")}, " +
                    $"downtime {r.DowntimeMs:0} ms, {r.Iterations} iterations{(r.ForcedSwitchover ? " (forced)" : "")}",
            Subtitle = $"{r.TotalMs / 1000:0.0} s in total; {r.Channels} channels, codec {r.Codec}, device buffer budget {ByteSize.Format(r.DeviceBufferBudgetBytes)}, " +
                       $"downtime limit {r.DowntimeLimitMs:0} ms, guest RAM {ByteSize.Format(r.RamBytes)}, device state {ByteSize.Format(r.DeviceStateBytes)}" +
                       (r.ChannelReconnects > 0 ? $", {r.ChannelReconnects} channel reconnects" : ""),
            TimeS = time,
            RamMiBps = ram,
            DeviceMiBps = device,
            RemainingDirtyMiB = samples.Select(s => s.RemainingDirtyBytes / MiB).ToArray(),
            DeviceBufferMiB = samples.Select(s => s.DeviceBufferBytes / MiB).ToArray(),
            DeviceBudgetMiB = samples.Select(s => s.DeviceBufferBudgetBytes / MiB).ToArray(),
            ThrottlePercent = samples.Select(s => (double)s.ThrottlePercent).ToArray(),
            Iterations = events.Where(e => e.Kind == TimelineEventKinds.Iteration).Select(e => (e.TimeMs / 1000, (int)e.Value)).ToArray(),
            Reconnects = events.Where(e => e.Kind == TimelineEventKinds.Reconnect).Select(e => (e.TimeMs / 1000, (int)e.Value)).ToArray(),
            ThrottleSteps = events.Where(e => e.Kind == TimelineEventKinds.Throttle).Select(e => (e.TimeMs / 1000, (int)e.Value)).ToArray(),
            Downtime = downtime,
        };
    }

    /// <summary>akka.tcp://mig@127.0.0.1:4053 -> 127.0.0.1:4053 (a node's name when the address carries none).</summary>
    private static string ShortNode(string address) => address.Contains('@') ? address[(address.IndexOf('@') + 1)..].TrimEnd('/') : address;
}
