namespace Migration.Devices.Ram;

/// <summary>Options for creating a RAM block.</summary>
public sealed record RamBlockOptions
{
    /// <summary>Backing file path; null = a temporary file deleted on dispose.</summary>
    public string? BackingFile { get; init; }
    /// <summary>Touch every page at creation so later first touches do not fault (3-5 us per page here).</summary>
    public bool Prefault { get; init; }
}
