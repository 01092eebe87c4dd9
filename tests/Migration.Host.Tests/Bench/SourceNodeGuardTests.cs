using Akka.Actor;
using Migration.Host.Bench;
using Xunit;

namespace Migration.Host.Tests.Bench;

/// <summary>A bench step fails at once, with a reason, when the source node's ActorSystem terminates under it.</summary>
public sealed class SourceNodeGuardTests
{
    [Fact]
    public async Task A_step_still_waiting_when_the_source_system_terminates_fails_at_once_and_says_why()
    {
        using var system = ActorSystem.Create("guard");
        var never = new TaskCompletionSource<int>().Task; // an ask the old incarnation will never answer
        var step = SourceNodeGuard.UnlessTerminated(system, never, "creating guest g");
        await system.Terminate();

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => step.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("creating guest g", e.Message);
        Assert.Contains("terminated", e.Message);
    }

    [Fact]
    public async Task A_step_that_completes_while_the_source_runs_returns_its_result()
    {
        using var system = ActorSystem.Create("guard");
        Assert.Equal(7, await SourceNodeGuard.UnlessTerminated(system, Task.FromResult(7), "step"));
        await system.Terminate();
    }
}
