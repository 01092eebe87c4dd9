using Migration.Actors.Messages;

namespace Migration.Host.Cli;

/// <summary>Shows a migration's progress on the console until it ends; returns the final report.</summary>
public static class ProgressConsole
{
    public static async Task<MigrationReport> FollowAsync(ProgressWatcher watcher, CancellationToken ct)
    {
        var interactive = !Console.IsOutputRedirected;
        var interval = TimeSpan.FromMilliseconds(interactive ? 200 : 1000);
        MigrationProgress? shown = null;
        while (!watcher.Finished.IsCompleted)
        {
            await Task.WhenAny(watcher.Finished, Task.Delay(interval, ct));
            var p = watcher.Latest;
            if (p is null || ReferenceEquals(p, shown))
            {
                continue;
            }

            shown = p;
            var line = ReportPrinter.ProgressLine(p);
            if (interactive)
            {
                Console.Write("\r" + line.PadRight(Math.Max(0, Console.WindowWidth - 1))[..Math.Min(line.Length + 10, Math.Max(20, Console.WindowWidth - 1))]);
            }
            else
            {
                Console.WriteLine(line);
            }
        }

        return await watcher.Finished;
    }
}
