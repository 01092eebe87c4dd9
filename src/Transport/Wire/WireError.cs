namespace Migration.Transport.Wire;

/// <summary>Formats error texts the same way everywhere: "channel N: what arrived, what was expected".</summary>
internal static class WireError
{
    /// <summary>Channel index used by context-free TryRead overloads: the message carries no channel prefix.</summary>
    public const int NoChannel = -1;

    public static string At(int channelIndex, string message) =>
        channelIndex >= 0 ? $"channel {channelIndex}: {message}" : message;

    public static string Truncated(int channelIndex, string what, int got, int need) =>
        At(channelIndex, $"truncated {what}: {got} bytes, expected {need}");

    public static string Version(int channelIndex, int got) =>
        At(channelIndex, $"protocol version {got} not supported, expected {WireConstants.CurrentVersion}");

    public static string Magic(int channelIndex, string what, uint got, uint expected) =>
        At(channelIndex, $"bad {what} magic 0x{got:X8}, expected 0x{expected:X8}");
}
