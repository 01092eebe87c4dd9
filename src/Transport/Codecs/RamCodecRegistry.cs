namespace Migration.Transport.Codecs;

/// <summary>
/// RAM codec factories keyed by wire <see cref="CodecId"/>, like QEMU's multifd_register_ops: each id is
/// registered once, a second registration is a programming error. Registration happens at startup; lookups
/// afterwards are safe from any thread (the table is only read once built).
/// </summary>
public sealed class RamCodecRegistry
{
    private readonly Dictionary<CodecId, IRamCodecFactory> _factories = [];
    private readonly Lock _gate = new();

    /// <summary>The built-in codecs: none, zstd, lz4.</summary>
    public static RamCodecRegistry Default { get; } = CreateDefault();

    public static RamCodecRegistry CreateDefault()
    {
        var registry = new RamCodecRegistry();
        registry.Register(new NoneCodecFactory());
        registry.Register(new ZstdCodecFactory());
        registry.Register(new Lz4CodecFactory());
        return registry;
    }

    /// <summary>Registers <paramref name="factory"/> under its id; throws if the id or 0 (reserved) is used.</summary>
    public void Register(IRamCodecFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        if (factory.Id == 0)
            throw new ArgumentException($"codec '{factory.Name}' uses wire id 0, which is reserved as invalid", nameof(factory));
        lock (_gate)
        {
            if (_factories.TryGetValue(factory.Id, out var existing))
                throw new InvalidOperationException(
                    $"RAM codec id {(byte)factory.Id} ({factory.Id}) is already registered by '{existing.Name}'; cannot register '{factory.Name}'");
            _factories.Add(factory.Id, factory);
        }
    }

    public bool IsRegistered(CodecId id)
    {
        lock (_gate) return _factories.ContainsKey(id);
    }

    /// <summary>The factory for <paramref name="id"/>; throws <see cref="CodecException"/> naming the known ids if absent.</summary>
    public IRamCodecFactory Get(CodecId id)
    {
        lock (_gate)
        {
            if (_factories.TryGetValue(id, out var factory)) return factory;
            var known = string.Join(", ", _factories.Values.OrderBy(f => f.Id).Select(f => $"{(byte)f.Id}={f.Name}"));
            throw new CodecException($"unknown RAM codec id {(byte)id}; registered: {known}");
        }
    }

    /// <summary>Shortcut for <c>Get(id).Create(level)</c>.</summary>
    public IRamCodec Create(CodecId id, int level = 0) => Get(id).Create(level);

    /// <summary>The registered ids in wire order.</summary>
    public IReadOnlyList<CodecId> Ids
    {
        get { lock (_gate) return _factories.Keys.Order().ToArray(); }
    }

    /// <summary>Parses "none", "zstd" or "lz4" (case-insensitive, surrounding spaces ignored).</summary>
    public static bool TryParse(string? name, out CodecId id)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "none": id = CodecId.None; return true;
            case "zstd": id = CodecId.Zstd; return true;
            case "lz4": id = CodecId.Lz4; return true;
            default: id = default; return false;
        }
    }

    /// <summary>The lower-case name used in settings and logs ("none", "zstd", "lz4"); "invalid(N)" otherwise.</summary>
    public static string Name(CodecId id) => id switch
    {
        CodecId.None => "none",
        CodecId.Zstd => "zstd",
        CodecId.Lz4 => "lz4",
        _ => $"invalid({(byte)id})",
    };
}
