using Migration.Actors.Settings;
using Migration.Actors.Source.Convergence;
using Xunit;

namespace Migration.Actors.Tests.Source.Convergence;

/// <summary>The switchover decision and auto-converge's throttle steps (QEMU's cpu-throttle-initial/-increment).</summary>
public sealed class ConvergencePolicyTests
{
    private static readonly AutoConvergeSettings On = new() { Enabled = true, InitialPercent = 20, IncrementPercent = 10, MaxPercent = 50, TriggerIterations = 2 };

    [Fact]
    public void Policy_must_switch_over_converged_when_the_estimate_fits_the_limit()
    {
        var p = new ConvergencePolicy(new AutoConvergeSettings(), maxIterations: 30);
        var d = p.OnIterationEnd(1, 1000, expectedDowntimeMs: 299, downtimeLimitMs: 300);
        Assert.True(d.Switchover);
        Assert.Equal(SwitchoverReason.Converged, d.Reason);
    }

    [Fact]
    public void Policy_must_continue_below_max_iterations_and_force_at_it()
    {
        var p = new ConvergencePolicy(new AutoConvergeSettings(), maxIterations: 3);
        Assert.False(p.OnIterationEnd(1, 1000, 900, 300).Switchover);
        Assert.False(p.OnIterationEnd(2, 1000, 900, 300).Switchover);
        var d = p.OnIterationEnd(3, 1000, 900, 300);
        Assert.True(d.Switchover);
        Assert.Equal(SwitchoverReason.MaxIterations, d.Reason);
        Assert.Equal(0, p.MaxThrottlePercent);
    }

    [Fact]
    public void Policy_must_honour_an_operator_switchover_at_the_next_boundary_whatever_the_estimate()
    {
        var p = new ConvergencePolicy(On, maxIterations: 30);
        Assert.False(p.OnIterationEnd(1, 1000, 5000, 300).Switchover);
        p.RequestSwitchover();
        var d = p.OnIterationEnd(2, 1000, 5000, 300);
        Assert.True(d.Switchover);
        Assert.Equal(SwitchoverReason.ForcedByOperator, d.Reason);
    }

    [Fact]
    public void Auto_converge_must_step_from_initial_by_increment_every_trigger_iterations_up_to_max()
    {
        var p = new ConvergencePolicy(On, maxIterations: 100);
        var throttles = new List<int>();
        for (uint i = 1; i <= 12; i++)
        {
            // The data left never shrinks: every iteration after the first counts as not converging.
            throttles.Add(p.OnIterationEnd(i, 1000, 5000, 300).ThrottlePercent);
        }

        // Iteration 1 has nothing to compare with; steps at 3, 5, 7, 9 (every second non-converging one), capped at 50.
        Assert.Equal([0, 0, 20, 20, 30, 30, 40, 40, 50, 50, 50, 50], throttles);
        Assert.Equal(50, p.ThrottlePercent);
        Assert.Equal(50, p.MaxThrottlePercent);
    }

    [Fact]
    public void Auto_converge_must_not_throttle_while_the_data_left_halves_each_iteration_or_when_off()
    {
        var p = new ConvergencePolicy(On, maxIterations: 100);
        long left = 1 << 30;
        for (uint i = 1; i <= 10; i++, left /= 3)
        {
            Assert.Equal(0, p.OnIterationEnd(i, left, 5000, 300).ThrottlePercent);
        }

        var off = new ConvergencePolicy(On with { Enabled = false }, maxIterations: 100);
        for (uint i = 1; i <= 10; i++)
        {
            Assert.Equal(0, off.OnIterationEnd(i, 1000, 5000, 300).ThrottlePercent);
        }
    }

    [Fact]
    public void Turning_auto_converge_off_must_lift_the_throttle_and_keep_the_maximum_for_the_report()
    {
        var p = new ConvergencePolicy(On, maxIterations: 100);
        for (uint i = 1; i <= 5; i++)
        {
            p.OnIterationEnd(i, 1000, 5000, 300);
        }

        Assert.Equal(30, p.ThrottlePercent);
        Assert.Equal(0, p.SetAutoConverge(false));
        Assert.Equal(0, p.OnIterationEnd(6, 1000, 5000, 300).ThrottlePercent);
        Assert.Equal(30, p.MaxThrottlePercent);
    }

    [Fact]
    public void Policy_must_use_the_limit_it_is_given_each_iteration()
    {
        // The operator raised the limit (migration set --downtime-limit): the same estimate now fits.
        var p = new ConvergencePolicy(new AutoConvergeSettings(), maxIterations: 30);
        Assert.False(p.OnIterationEnd(1, 1000, 500, 300).Switchover);
        Assert.Equal(SwitchoverReason.Converged, p.OnIterationEnd(2, 1000, 500, 600).Reason);
    }
}
