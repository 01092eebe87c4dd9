using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Migration.Devices.Device.Structured;

/// <summary>
/// Wire format of a structured device's state blob, all little-endian:
/// <code>
/// u32 magic 0x56535431 ("VST1"), u32 version, u32 fieldCount,
/// fieldCount x { u8 nameLength, name (UTF-8), u8 type (FieldType), value },
/// u64 XxHash64 of every preceding byte.
/// value: u8/bool 1 byte (bool 0|1), u16 2, u32 4, u64/i64 8, bytes/string { u32 length, bytes }.
/// </code>
/// Parsing checks everything against the receiving schema: newer versions are refused, unknown, duplicate
/// or mistyped fields are errors, fields introduced after the blob's version take their defaults, fields the
/// blob's version should have are required. Pure functions; thread-safe.
/// </summary>
public static class StructuredStateCodec
{
    public const uint Magic = 0x56535431;
    /// <summary>Largest blob accepted from the wire.</summary>
    public const int MaxBlobBytes = 1 << 20;
    private const int FixedHeader = 12;
    private const int Trailer = 8;

    /// <summary>Serializes <paramref name="values"/> (one per schema field, schema order) as a version-<paramref name="version"/> blob.</summary>
    public static byte[] Serialize(StructuredSchema schema, int version, IReadOnlyList<FieldValue> values)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count != schema.Fields.Count)
            throw new ArgumentException($"schema '{schema.Name}' has {schema.Fields.Count} fields, got {values.Count} values", nameof(values));
        var w = new ArrayBufferWriter<byte>(256);
        Span<byte> head = w.GetSpan(FixedHeader);
        BinaryPrimitives.WriteUInt32LittleEndian(head, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], (uint)version);
        int countAt = 8;
        w.Advance(FixedHeader);
        uint count = 0;
        for (int i = 0; i < schema.Fields.Count; i++)
        {
            FieldSpec f = schema.Fields[i];
            if (f.SinceVersion > version)
                continue;
            FieldValue v = values[i];
            if (v.Type != f.Type)
                throw new ArgumentException($"field '{f.Name}' of type {f.Type} has a {v.Type} value", nameof(values));
            WriteField(w, f.Name, v);
            count++;
        }
        byte[] blob = new byte[w.WrittenCount + Trailer];
        w.WrittenSpan.CopyTo(blob);
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(countAt), count);
        BinaryPrimitives.WriteUInt64LittleEndian(blob.AsSpan(blob.Length - Trailer), XxHash64.HashToUInt64(blob.AsSpan(0, blob.Length - Trailer)));
        return blob;
    }

    /// <summary>Parses a blob for <paramref name="schema"/>; on success <paramref name="values"/> has one value per schema field.</summary>
    public static bool TryParse(ReadOnlySpan<byte> blob, StructuredSchema schema, out FieldValue[] values, out int version, out string error)
    {
        values = [];
        version = 0;
        if (blob.Length < FixedHeader + Trailer)
            return Err($"state blob of {blob.Length} bytes is shorter than the minimum {FixedHeader + Trailer}", out error);
        if (blob.Length > MaxBlobBytes)
            return Err($"state blob of {blob.Length} bytes exceeds the limit {MaxBlobBytes}", out error);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (magic != Magic)
            return Err($"bad state magic 0x{magic:X8}, expected 0x{Magic:X8}", out error);
        ulong expectedSum = BinaryPrimitives.ReadUInt64LittleEndian(blob[^Trailer..]);
        ulong actualSum = XxHash64.HashToUInt64(blob[..^Trailer]);
        if (expectedSum != actualSum)
            return Err($"state checksum 0x{actualSum:X16} does not match 0x{expectedSum:X16} (corrupted)", out error);
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(blob[4..]);
        if (v == 0)
            return Err("state version 0 is invalid", out error);
        if (v > (uint)schema.Version)
            return Err($"state version {v} is newer than supported version {schema.Version}", out error);
        version = (int)v;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(blob[8..]);
        if (count > (uint)schema.Fields.Count)
            return Err($"state version {v} has {count} fields, more than the schema's {schema.Fields.Count}", out error);

        var parsed = new FieldValue[schema.Fields.Count];
        var seen = new bool[schema.Fields.Count];
        ReadOnlySpan<byte> rest = blob[FixedHeader..^Trailer];
        for (uint n = 0; n < count; n++)
        {
            if (!TryReadField(ref rest, out string name, out FieldType type, out ulong bits, out ReadOnlySpan<byte> bytes, out error))
                return Err($"field {n}: {error}", out error);
            int idx = schema.IndexOf(name);
            if (idx < 0)
                return Err($"unknown field '{name}' in state version {v}", out error);
            FieldSpec spec = schema.Fields[idx];
            if (spec.SinceVersion > version)
                return Err($"field '{name}' (introduced in version {spec.SinceVersion}) in state version {v}", out error);
            if (spec.Type != type)
                return Err($"field '{name}' has type {type}, expected {spec.Type}", out error);
            if (seen[idx])
                return Err($"duplicate field '{name}'", out error);
            seen[idx] = true;
            parsed[idx] = FieldValue.FromRaw(type, bits, bytes);
        }
        if (!rest.IsEmpty)
            return Err($"{rest.Length} trailing bytes after {count} fields", out error);
        for (int i = 0; i < parsed.Length; i++)
        {
            if (seen[i])
                continue;
            FieldSpec spec = schema.Fields[i];
            if (spec.SinceVersion <= version)
                return Err($"field '{spec.Name}' (since version {spec.SinceVersion}) missing from state version {v}", out error);
            parsed[i] = spec.Default;
        }
        values = parsed;
        error = "";
        return true;
    }

    private static void WriteField(ArrayBufferWriter<byte> w, string name, FieldValue v)
    {
        int nameBytes = Encoding.UTF8.GetByteCount(name);
        int valueBytes = ScalarSize(v.Type) is int s and > 0 ? s : 4 + v.Blob.Length;
        Span<byte> span = w.GetSpan(2 + nameBytes + valueBytes);
        span[0] = (byte)nameBytes;
        Encoding.UTF8.GetBytes(name, span[1..]);
        int at = 1 + nameBytes;
        span[at++] = (byte)v.Type;
        switch (v.Type)
        {
            case FieldType.U8 or FieldType.Bool: span[at] = (byte)v.Bits; break;
            case FieldType.U16: BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)v.Bits); break;
            case FieldType.U32: BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)v.Bits); break;
            case FieldType.U64 or FieldType.I64: BinaryPrimitives.WriteUInt64LittleEndian(span[at..], v.Bits); break;
            default:
                BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)v.Blob.Length);
                v.Blob.CopyTo(span[(at + 4)..]);
                break;
        }
        w.Advance(2 + nameBytes + valueBytes);
    }

    private static bool TryReadField(ref ReadOnlySpan<byte> rest, out string name, out FieldType type, out ulong bits, out ReadOnlySpan<byte> bytes, out string error)
    {
        name = "";
        type = 0;
        bits = 0;
        bytes = default;
        if (rest.Length < 1 || rest.Length < 2 + rest[0])
            return Err($"truncated field header ({rest.Length} bytes left)", out error);
        int nameLength = rest[0];
        if (nameLength == 0)
            return Err("empty field name", out error);
        name = Encoding.UTF8.GetString(rest.Slice(1, nameLength));
        type = (FieldType)rest[1 + nameLength];
        rest = rest[(2 + nameLength)..];
        if (!Enum.IsDefined(type))
            return Err($"field '{name}' has unknown type tag {(byte)type}", out error);
        int size = ScalarSize(type);
        if (size > 0)
        {
            if (rest.Length < size)
                return Err($"field '{name}' truncated: {size} value bytes needed, {rest.Length} left", out error);
            bits = size switch
            {
                1 => rest[0],
                2 => BinaryPrimitives.ReadUInt16LittleEndian(rest),
                4 => BinaryPrimitives.ReadUInt32LittleEndian(rest),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(rest),
            };
            if (type == FieldType.Bool && bits > 1)
                return Err($"field '{name}' bool value {bits}, expected 0 or 1", out error);
            rest = rest[size..];
            error = "";
            return true;
        }
        if (rest.Length < 4)
            return Err($"field '{name}' truncated: length prefix needs 4 bytes, {rest.Length} left", out error);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
        if (length > (uint)(rest.Length - 4))
            return Err($"field '{name}' length {length} beyond the {rest.Length - 4} bytes left", out error);
        bytes = rest.Slice(4, (int)length);
        rest = rest[(4 + (int)length)..];
        error = "";
        return true;
    }

    private static int ScalarSize(FieldType type) => type switch
    {
        FieldType.U8 or FieldType.Bool => 1,
        FieldType.U16 => 2,
        FieldType.U32 => 4,
        FieldType.U64 or FieldType.I64 => 8,
        _ => 0,
    };

    private static bool Err(string message, out string error)
    {
        error = message;
        return false;
    }
}
