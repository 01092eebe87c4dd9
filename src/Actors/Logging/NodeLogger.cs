using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace Migration.Actors.Logging;

/// <summary>
/// The node's logger (akka.loggers in hocon/cluster.conf): writes the events that <see cref="NodeLogFilter"/> keeps to
/// stdout, as text (Akka's layout) or, with migration.log-format = json, one JSON object per line with the fields
/// time, level, source, class, thread, message and (when there is one) error. An actor: events arrive one at a time on
/// its own thread, so lines never interleave.
/// </summary>
public sealed class NodeLogger : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    public NodeLogger()
    {
        var config = Context.System.Settings.Config;
        var json = config.GetString("migration.log-format", "text") == "json";
        var showAll = Context.System.Settings.LogLevel.Equals("DEBUG", StringComparison.OrdinalIgnoreCase);
        var stdout = Console.Out;
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e =>
        {
            if (NodeLogFilter.Filter(e, showAll) is { } kept)
            {
                stdout.WriteLine(json ? JsonLine(kept) : kept.ToString());
            }
        });
    }

    /// <summary>One JSON object (no newline inside) for an event.</summary>
    public static string JsonLine(LogEvent e) => JsonLine(e.Timestamp, LevelName(e.LogLevel()), e.LogSource, e.LogClass?.FullName,
        e.Thread.ManagedThreadId, e.Message?.ToString() ?? "", e.Cause);

    /// <summary>One JSON object for a line that does not come from Akka's event stream (the node command's "up" line).</summary>
    public static string JsonLine(DateTime time, string level, string? source, string? type, int thread, string message, Exception? error = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("time", time.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            w.WriteString("level", level);
            w.WriteString("source", source ?? "");
            w.WriteString("class", type ?? "");
            w.WriteNumber("thread", thread);
            w.WriteString("message", message);
            if (error is not null)
            {
                w.WriteString("error", error.ToString());
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.DebugLevel => "DEBUG",
        LogLevel.InfoLevel => "INFO",
        LogLevel.WarningLevel => "WARNING",
        _ => "ERROR",
    };
}

/// <summary>
/// The node's stdout logger (akka.stdout-logger-class): Akka writes through it before NodeLogger starts and after it
/// stops (start-up and shutdown), so those lines are filtered and formatted like the others. Text layout; the json
/// variant is <see cref="NodeJsonStdoutLogger"/> (NodeHost picks it for migration.log-format = json). Not an actor:
/// called on whatever thread logs, so it writes one whole line per call.
/// </summary>
public class NodeStdoutLogger : MinimalLogger
{
    protected virtual bool Json => false;

    protected override void Log(object message)
    {
        if (message is not LogEvent e)
        {
            Console.WriteLine(message);
            return;
        }

        if (NodeLogFilter.Filter(e, showAll: false) is { } kept)
        {
            Console.WriteLine(Json ? NodeLogger.JsonLine(kept) : kept.ToString());
        }
    }
}

/// <summary>The json variant of <see cref="NodeStdoutLogger"/>.</summary>
public sealed class NodeJsonStdoutLogger : NodeStdoutLogger
{
    protected override bool Json => true;
}
