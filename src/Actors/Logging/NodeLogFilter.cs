using System.Text.RegularExpressions;
using Akka.Event;

namespace Migration.Actors.Logging;

/// <summary>
/// Decides what a node's log shows (pure; used by <see cref="NodeLogger"/>). Below WARNING only our own lines
/// (classes in Migration.*) pass: node up, members joining and leaving, migrations starting, changing phase and
/// ending; Akka's own INFO chatter does not (set akka.loglevel = DEBUG to see everything). A remote system that
/// disconnects (a CLI that finished, a node that left) is not an error: Akka.Remote reports every such disassociation
/// as an ERROR "Disassociated" (EndpointDisassociatedException) plus a WARNING "address is now gated"; the first is
/// dropped and the second becomes one INFO line "remote system X disconnected". Every other WARNING and ERROR passes
/// unchanged (a real association failure, a quarantine, an oversized frame, ...).
/// </summary>
public static partial class NodeLogFilter
{
    private const string Disassociated = "Akka.Remote.EndpointDisassociatedException";

    /// <summary>The event to write (possibly rewritten), or null to drop it.</summary>
    public static LogEvent? Filter(LogEvent e, bool showAll)
    {
        if (showAll)
        {
            return e;
        }

        if (e is Error && IsDisassociation(e.Cause))
        {
            return null;
        }

        if (e is Warning && e.Cause is null && e.Message?.ToString() is { } text && text.Contains(Disassociated, StringComparison.Ordinal))
        {
            var address = GatedAddress().Match(text) is { Success: true } m ? m.Groups[1].Value : "a remote system";
            return new Info(e.LogSource, e.LogClass, $"remote system {address} disconnected");
        }

        if (e.LogLevel() >= LogLevel.WarningLevel)
        {
            return e;
        }

        return IsOurs(e) ? e : null;
    }

    private static bool IsDisassociation(Exception? cause)
    {
        for (var c = cause; c is not null; c = c.InnerException)
        {
            if (c.GetType().FullName == Disassociated)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsOurs(LogEvent e) =>
        e.LogClass?.Namespace?.StartsWith("Migration", StringComparison.Ordinal) == true;

    [GeneratedRegex(@"remote system (\S+) has failed")]
    private static partial Regex GatedAddress();
}
