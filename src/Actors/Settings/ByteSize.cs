using System.Globalization;

namespace Migration.Actors.Settings;

/// <summary>
/// Parses and formats byte sizes: an integer or decimal followed by B, KiB, MiB, GiB or TiB
/// (case-insensitive; "K", "M", "G", "KB", "MB", "GB" are read as binary units too). No unit = bytes.
/// </summary>
public static class ByteSize
{
    private static readonly (string Suffix, long Factor)[] Units =
    [
        ("TIB", 1L << 40), ("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10),
        ("TB", 1L << 40), ("GB", 1L << 30), ("MB", 1L << 20), ("KB", 1L << 10),
        ("T", 1L << 40), ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10), ("B", 1L),
    ];

    public static bool TryParse(string? text, out long bytes, out string error)
    {
        bytes = 0;
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty size; expected a number with a unit such as 512MiB";
            return false;
        }

        var s = text.Trim().Replace("_", "");
        long factor = 1;
        var upper = s.ToUpperInvariant();
        foreach (var (suffix, f) in Units)
        {
            if (upper.EndsWith(suffix, StringComparison.Ordinal))
            {
                factor = f;
                s = s[..^suffix.Length].Trim();
                break;
            }
        }

        if (!decimal.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            error = $"'{text}' is not a size; expected a number with a unit B, KiB, MiB or GiB (e.g. 256MiB)";
            return false;
        }

        var value = number * factor;
        if (value > long.MaxValue || value != decimal.Truncate(value))
        {
            error = $"'{text}' is not a whole number of bytes";
            return false;
        }

        bytes = (long)value;
        return true;
    }

    public static long Parse(string text) =>
        TryParse(text, out var bytes, out var error) ? bytes : throw new FormatException(error);

    /// <summary>Human-readable binary size, e.g. "1.50 GiB".</summary>
    public static string Format(long bytes)
    {
        double b = bytes;
        string[] names = ["B", "KiB", "MiB", "GiB", "TiB"];
        var i = 0;
        while (Math.Abs(b) >= 1024 && i < names.Length - 1)
        {
            b /= 1024;
            i++;
        }

        return i == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{b:0.##} {names[i]}");
    }
}
