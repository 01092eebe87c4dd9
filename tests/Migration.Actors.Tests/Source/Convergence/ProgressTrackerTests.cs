using Migration.Actors.Source.Convergence;
using Xunit;

namespace Migration.Actors.Tests.Source.Convergence;

/// <summary>Progress shown to the operator never runs backwards, whatever the raw estimates do.</summary>
public sealed class ProgressTrackerTests
{
    private const long MiB = 1 << 20;

    [Fact]
    public void Percent_must_never_decrease_and_eta_never_increase_across_iterations_throttle_steps_and_reconnects()
    {
        var tracker = new ProgressTracker();
        // (sent, remaining, rate B/ms, expected downtime): raw percent and raw ETA both go back several times.
        (long Sent, long Remaining, double Rate, double Downtime)[] sequence =
        [
            (100 * MiB, 900 * MiB, MiB, 5000),  // 10 %, eta 905 + 5000 ms
            (600 * MiB, 400 * MiB, MiB, 3000),  // 60 %
            (700 * MiB, 700 * MiB, MiB, 4000),  // iteration 2 finds much dirty: raw 50 %, raw eta up
            (800 * MiB, 300 * MiB, MiB / 2.0, 900), // a throttle step; rate dropped: raw eta up
            (850 * MiB, 900 * MiB, MiB, 2000),  // a lost channel's pages marked dirty again: raw 48.6 %
            (1200 * MiB, 10 * MiB, 2 * MiB, 250),
        ];
        var last = new ProgressFigures(0, double.MaxValue);
        var raws = new List<double>();
        foreach (var (sent, remaining, rate, downtime) in sequence)
        {
            var f = tracker.Next(sent, remaining, rate, downtime, ended: false, completed: false);
            raws.Add(100.0 * sent / (sent + remaining));
            Assert.True(f.Percent >= last.Percent, $"percent went back from {last.Percent} to {f.Percent}");
            Assert.True(f.EtaMs <= last.EtaMs, $"eta went up from {last.EtaMs} to {f.EtaMs}");
            Assert.InRange(f.Percent, 0, ProgressTracker.MaxRunningPercent);
            last = f;
        }

        // The sequence really would have gone backwards without the tracker.
        Assert.True(raws[2] < raws[1] && raws[4] < raws[3]);
        var done = tracker.Next(1210 * MiB, 0, 2 * MiB, 0, ended: true, completed: true);
        Assert.Equal(100, done.Percent);
        Assert.Equal(0, done.EtaMs);
    }

    [Fact]
    public void Eta_must_be_unknown_until_a_rate_is_measured_and_zero_once_ended()
    {
        var tracker = new ProgressTracker();
        Assert.Equal(-1, tracker.Next(0, 100 * MiB, 0, 0, ended: false, completed: false).EtaMs);
        Assert.Equal(0, tracker.Next(0, 100 * MiB, 0, 0, ended: false, completed: false).Percent);
        var failed = tracker.Next(10 * MiB, 90 * MiB, MiB, 0, ended: true, completed: false);
        Assert.Equal(0, failed.EtaMs);
        Assert.Equal(10, failed.Percent, 6);
    }
}
