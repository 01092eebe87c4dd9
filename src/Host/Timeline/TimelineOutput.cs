using Migration.Actors.Messages;

namespace Migration.Host.Timeline;

/// <summary>`--timeline FILE.svg` of `migrate` and `demo`: draws the final report's timeline to FILE.</summary>
public static class TimelineOutput
{
    /// <summary>Writes the picture when a path was given; a report too short to draw is said on stderr, not fatal.</summary>
    public static void WriteIfAsked(MigrationReport report, string? path)
    {
        if (path is null)
        {
            return;
        }

        if (report.Timeline.Count < 2)
        {
            Console.Error.WriteLine($"timeline not written: the report has {report.Timeline.Count} samples (the migration ended before its second progress tick)");
            return;
        }

        TimelinePicture.Save(report, path);
        Console.WriteLine($"Timeline written to {path}");
    }
}
