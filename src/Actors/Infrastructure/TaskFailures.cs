namespace Migration.Actors.Infrastructure;

/// <summary>Helpers for failures that come back from tasks (PipeTo, ContinueWith).</summary>
public static class TaskFailures
{
    /// <summary>The exception a task failed with, without the AggregateException a faulted task wraps it in.</summary>
    public static Exception Unwrap(Exception e) => e is AggregateException a ? a.InnerException ?? e : e;
}
