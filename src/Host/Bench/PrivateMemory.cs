namespace Migration.Host.Bench;

/// <summary>
/// A process's private resident memory on Linux: RssAnon + RssShmem from /proc/PID/status (anonymous pages, guest RAM
/// and the memory pool among them, plus shared-memory pages such as the JIT's double-mapped code), i.e. its working
/// set without the file-backed pages of the runtime's and the node's mapped binaries, which are page cache shared
/// with every process that maps the same files. Null where /proc is unavailable or the process exited.
/// </summary>
public static class PrivateMemory
{
    public static long? Of(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/status");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        long? anon = Kilobytes(text, "RssAnon:");
        long? shmem = Kilobytes(text, "RssShmem:");
        return anon is { } a && shmem is { } s ? (a + s) * 1024 : null;
    }

    /// <summary>The value of a "Key:   123 kB" line, or null if the key is missing or malformed.</summary>
    internal static long? Kilobytes(string status, string key)
    {
        var at = status.IndexOf(key, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var rest = status.AsSpan(at + key.Length);
        var end = rest.IndexOf('\n');
        var value = (end < 0 ? rest : rest[..end]).Trim();
        if (!value.EndsWith("kB", StringComparison.Ordinal))
        {
            return null;
        }

        return long.TryParse(value[..^2].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var kb) ? kb : null;
    }
}
