using Migration.Actors.Messages;
using Migration.Actors.Reporting;
using Xunit;

namespace Migration.Actors.Tests.Reporting;

public sealed class TimelineRecorderTests
{
    private static void Tick(TimelineRecorder r, double ms, bool force = false) => r.Sample(ms, "precopy", 1, (long)ms * 1000, 0, 0, 0, 1 << 20, force);

    [Fact]
    public void A_long_migration_keeps_at_most_MaxSamples_spread_over_its_whole_length()
    {
        var r = new TimelineRecorder();
        for (var t = 0; t < 10_000; t++)
        {
            Tick(r, t * 250);
        }

        Assert.InRange(r.Samples.Count, TimelineRecorder.MaxSamples / 2, TimelineRecorder.MaxSamples);
        Assert.Equal(0, r.Samples[0].TimeMs);
        Assert.True(r.Samples[^1].TimeMs >= 9_900 * 250.0, $"last sample at {r.Samples[^1].TimeMs}");
        for (var i = 1; i < r.Samples.Count; i++)
        {
            Assert.True(r.Samples[i].TimeMs > r.Samples[i - 1].TimeMs);
        }
    }

    [Fact]
    public void Forced_samples_are_kept_while_thinning_and_samples_never_go_back_in_time()
    {
        var r = new TimelineRecorder();
        for (var t = 0; t < 2_000; t++)
        {
            Tick(r, t);
        }

        Tick(r, 2_000.5, force: true);
        Assert.Equal(2_000.5, r.Samples[^1].TimeMs);
        Assert.Throws<ArgumentOutOfRangeException>(() => Tick(r, 10));
    }

    [Fact]
    public void Throttle_steps_are_events_and_set_the_percent_of_the_samples_after_them()
    {
        var r = new TimelineRecorder();
        Tick(r, 0);
        r.Throttled(100, 20);
        Tick(r, 250);
        r.Throttled(300, 0);
        Tick(r, 500);

        Assert.Equal([0, 20, 0], r.Samples.Select(s => s.ThrottlePercent));
        Assert.Equal([20L, 0L], r.Events.Where(e => e.Kind == TimelineEventKinds.Throttle).Select(e => e.Value));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Throttled(400, 120));
    }

    [Fact]
    public void Events_are_bounded_but_the_stop_and_the_resume_are_always_recorded()
    {
        var r = new TimelineRecorder();
        for (var i = 1; i <= TimelineRecorder.MaxEvents + 50; i++)
        {
            r.IterationStarted(i, i);
        }

        r.Stopped(1_000);
        r.Resumed(1_100);

        Assert.Equal(TimelineRecorder.MaxEvents + 2, r.Events.Count);
        Assert.Equal(TimelineEventKinds.Stop, r.Events[^2].Kind);
        Assert.Equal(TimelineEventKinds.Resume, r.Events[^1].Kind);
    }
}
