using System.Text;

namespace Migration.Devices.Device.Structured;

/// <summary>One field of a structured device: introduced in schema version <paramref name="SinceVersion"/>; <paramref name="Default"/> is used when loading older state.</summary>
public sealed record FieldSpec(string Name, FieldType Type, int SinceVersion, FieldValue Default);

/// <summary>
/// The versioned field set of a structured device (like a QEMU VMStateDescription). Immutable after
/// construction; validated once: unique non-empty names of at most 255 UTF-8 bytes, 1 &lt;= SinceVersion &lt;= Version,
/// defaults of the field's type.
/// </summary>
public sealed class StructuredSchema
{
    public const int MaxNameBytes = 255;

    private readonly Dictionary<string, int> _indexByName = new(StringComparer.Ordinal);

    public StructuredSchema(string name, int version, IReadOnlyList<FieldSpec> fields)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(fields);
        if (version < 1)
            throw new ArgumentException($"schema '{name}': version {version} must be >= 1", nameof(version));
        if (fields.Count == 0)
            throw new ArgumentException($"schema '{name}': needs at least one field", nameof(fields));
        for (int i = 0; i < fields.Count; i++)
        {
            FieldSpec f = fields[i];
            if (string.IsNullOrEmpty(f.Name) || Encoding.UTF8.GetByteCount(f.Name) > MaxNameBytes)
                throw new ArgumentException($"schema '{name}': field {i} name must be 1..{MaxNameBytes} UTF-8 bytes", nameof(fields));
            if (!Enum.IsDefined(f.Type))
                throw new ArgumentException($"schema '{name}': field '{f.Name}' has unknown type {(byte)f.Type}", nameof(fields));
            if (f.SinceVersion < 1 || f.SinceVersion > version)
                throw new ArgumentException($"schema '{name}': field '{f.Name}' since version {f.SinceVersion} must be in 1..{version}", nameof(fields));
            if (f.Default.Type != f.Type)
                throw new ArgumentException($"schema '{name}': field '{f.Name}' of type {f.Type} has a {f.Default.Type} default", nameof(fields));
            if (!_indexByName.TryAdd(f.Name, i))
                throw new ArgumentException($"schema '{name}': duplicate field '{f.Name}'", nameof(fields));
        }
        Name = name;
        Version = version;
        Fields = fields.ToArray();
    }

    public string Name { get; }
    public int Version { get; }
    public IReadOnlyList<FieldSpec> Fields { get; }

    /// <summary>Index of the named field, or -1.</summary>
    public int IndexOf(string fieldName) => _indexByName.GetValueOrDefault(fieldName, -1);
}
