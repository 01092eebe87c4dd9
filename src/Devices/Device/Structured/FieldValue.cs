using System.Text;

namespace Migration.Devices.Device.Structured;

/// <summary>Type of a structured-device field. Wire value: 0 is reserved as invalid.</summary>
public enum FieldType : byte
{
    U8 = 1,
    U16 = 2,
    U32 = 3,
    U64 = 4,
    I64 = 5,
    Bool = 6,
    Bytes = 7,
    String = 8,
}

/// <summary>
/// An immutable typed field value. Scalars live in <see cref="Bits"/>; bytes/strings in a private copy
/// (strings as UTF-8). Equality is by type and content.
/// </summary>
public readonly struct FieldValue : IEquatable<FieldValue>
{
    private readonly byte[]? _blob;

    private FieldValue(FieldType type, ulong bits, byte[]? blob)
    {
        Type = type;
        Bits = bits;
        _blob = blob;
    }

    public FieldType Type { get; }
    /// <summary>Raw scalar bits (zero-extended; I64 as two's complement); 0 for bytes/strings.</summary>
    public ulong Bits { get; }
    /// <summary>Content of a Bytes/String value (UTF-8 for strings); empty for scalars.</summary>
    public ReadOnlySpan<byte> Blob => _blob;

    public static FieldValue U8(byte v) => new(FieldType.U8, v, null);
    public static FieldValue U16(ushort v) => new(FieldType.U16, v, null);
    public static FieldValue U32(uint v) => new(FieldType.U32, v, null);
    public static FieldValue U64(ulong v) => new(FieldType.U64, v, null);
    public static FieldValue I64(long v) => new(FieldType.I64, unchecked((ulong)v), null);
    public static FieldValue Bool(bool v) => new(FieldType.Bool, v ? 1UL : 0UL, null);
    public static FieldValue Bytes(ReadOnlySpan<byte> v) => new(FieldType.Bytes, 0, v.ToArray());
    public static FieldValue String(string v) => new(FieldType.String, 0, Encoding.UTF8.GetBytes(v ?? throw new ArgumentNullException(nameof(v))));

    /// <summary>Builds a value of <paramref name="type"/> from raw scalar bits or blob bytes (used by the parser).</summary>
    internal static FieldValue FromRaw(FieldType type, ulong bits, ReadOnlySpan<byte> blob)
        => type is FieldType.Bytes or FieldType.String ? new(type, 0, blob.ToArray()) : new(type, bits, null);

    public ulong AsUInt64() => Type is FieldType.Bytes or FieldType.String or FieldType.I64
        ? throw new InvalidOperationException($"a {Type} value is not an unsigned integer")
        : Bits;
    public long AsInt64() => Type == FieldType.I64 ? unchecked((long)Bits) : throw new InvalidOperationException($"a {Type} value is not an I64");
    public bool AsBool() => Type == FieldType.Bool ? Bits != 0 : throw new InvalidOperationException($"a {Type} value is not a Bool");
    public byte[] AsBytes() => Type == FieldType.Bytes ? _blob!.ToArray() : throw new InvalidOperationException($"a {Type} value is not Bytes");
    public string AsString() => Type == FieldType.String ? Encoding.UTF8.GetString(_blob!) : throw new InvalidOperationException($"a {Type} value is not a String");

    public bool Equals(FieldValue other)
        => Type == other.Type && Bits == other.Bits && Blob.SequenceEqual(other.Blob);
    public override bool Equals(object? obj) => obj is FieldValue v && Equals(v);
    public override int GetHashCode() => HashCode.Combine(Type, Bits, _blob?.Length ?? 0);
    public static bool operator ==(FieldValue a, FieldValue b) => a.Equals(b);
    public static bool operator !=(FieldValue a, FieldValue b) => !a.Equals(b);

    public override string ToString() => Type switch
    {
        FieldType.I64 => $"i64 {AsInt64()}",
        FieldType.Bool => $"bool {AsBool()}",
        FieldType.Bytes => $"bytes {Convert.ToHexString(_blob!)}",
        FieldType.String => $"string \"{AsString()}\"",
        _ => $"{Type.ToString().ToLowerInvariant()} {Bits}",
    };
}
