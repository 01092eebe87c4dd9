using Migration.Transport.Codecs;

namespace Migration.Actors.Settings;

/// <summary>
/// What a source may ask of a destination for one migration, carried in PrepareIncoming instead of the source's whole
/// <see cref="MigrationSettings"/> (whose node keys, listener, TLS files, memory capacity, connect and handshake
/// timeouts, are the destination's own business). The destination treats it as untrusted peer input:
/// <see cref="Problem"/> checks every field against fixed ranges, and <see cref="ForDestination"/> composes the
/// destination's effective settings from its own node settings plus these, with the device buffer budget capped at
/// the node's <c>max-device-buffer-budget</c>. Immutable; built on the source by <see cref="From"/>.
/// </summary>
public sealed record MigrationParameters
{
    public int Channels { get; init; }
    public CodecId Codec { get; init; }
    public int CodecLevel { get; init; }
    public bool ZeroPageDetection { get; init; }
    public int PacketPages { get; init; }
    public int ChunkSize { get; init; }

    /// <summary>The budget the source asks for; the destination grants at most its cap and reports what it granted (PrepareAck).</summary>
    public long DeviceBufferBudget { get; init; }

    public bool PrefaultDestination { get; init; }

    /// <summary>Timeouts both ends act on, so they travel with the migration (within the ranges below).</summary>
    public TimeSpan ChannelIdleTimeout { get; init; }
    public TimeSpan ChannelReconnectTimeout { get; init; }
    public TimeSpan CommitTimeout { get; init; }

    /// <summary>Injected load delays (slow-load faults) for this migration only: device id -> ms per MiB; never written into the guest's spec.</summary>
    public IReadOnlyList<SlowLoad> SlowLoads { get; init; } = [];

    /// <summary>Fault injection `hold:verify=MS`: the destination holds this migration that long before it answers
    /// DestinationVerified (a window for fault drills); 0 = none. For this migration only.</summary>
    public double HoldVerifyMs { get; init; }

    /// <summary>Fault injection `hold:setup=MS`: the destination holds this migration that long before it acknowledges
    /// the prepare (the source stays in setup: a window for fault drills); 0 = none. For this migration only.</summary>
    public double HoldSetupMs { get; init; }

    /// <summary>Fault injection `hold:resume=MS`: the destination waits that long, once, after it decided to resume the
    /// verified guest and before it claims it (a window for fault drills); 0 = none. For this migration only.</summary>
    public double HoldResumeMs { get; init; }

    public const double MaxHoldMs = 600_000;

    public static readonly TimeSpan MaxTimeout = TimeSpan.FromHours(1);
    public const int MaxSlowLoads = 64;
    public const double MaxLoadDelayMsPerMiB = 10_000;

    /// <summary>The parameters of a migration the source runs with <paramref name="s"/>.</summary>
    public static MigrationParameters From(MigrationSettings s) => new()
    {
        Channels = s.Channels,
        Codec = s.Codec,
        CodecLevel = s.CodecLevel,
        ZeroPageDetection = s.ZeroPageDetection,
        PacketPages = s.PacketPages,
        ChunkSize = s.ChunkSize,
        DeviceBufferBudget = s.DeviceBufferBudget,
        PrefaultDestination = s.PrefaultDestination,
        ChannelIdleTimeout = s.ChannelIdleTimeout,
        ChannelReconnectTimeout = s.ChannelReconnectTimeout,
        CommitTimeout = s.CommitTimeout,
        SlowLoads = s.Inject.Where(f => f.Kind == FaultInjection.SlowLoad).Select(f => new SlowLoad(f.Device ?? "", f.Value)).ToArray(),
        HoldVerifyMs = s.Inject.LastOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "verify")?.Value ?? 0,
        HoldSetupMs = s.Inject.LastOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "setup")?.Value ?? 0,
        HoldResumeMs = s.Inject.LastOrDefault(f => f.Kind == FaultInjection.Hold && f.Phase == "resume")?.Value ?? 0,
    };

    /// <summary>Null when every field is within range, else what arrived and what was expected (first bad field).</summary>
    public string? Problem(IReadOnlyCollection<string> deviceIds)
    {
        if (Channels is < 1 or > 64)
        {
            return $"channels = {Channels}; expected 1..64";
        }

        if (!Enum.IsDefined(Codec))
        {
            return $"codec id {(int)Codec}; expected {string.Join(", ", Enum.GetValues<CodecId>().Select(c => $"{(int)c} ({c})"))}";
        }

        if (CodecLevel is < 0 or > 22)
        {
            return $"codec-level = {CodecLevel}; expected 0..22";
        }

        if (PacketPages is < 1 or > 1024)
        {
            return $"packet-pages = {PacketPages}; expected 1..1024";
        }

        if (ChunkSize is < 4096 or > 64 << 20)
        {
            return $"chunk-size = {ChunkSize} bytes; expected 4 KiB..64 MiB";
        }

        if (DeviceBufferBudget < ChunkSize)
        {
            return $"device-buffer-budget = {DeviceBufferBudget} bytes; expected at least chunk-size = {ChunkSize} bytes";
        }

        foreach (var (name, value, min) in new[]
                 {
                     ("channel-idle-timeout", ChannelIdleTimeout, TimeSpan.FromMilliseconds(100)),
                     ("channel-reconnect-timeout", ChannelReconnectTimeout, TimeSpan.Zero),
                     ("commit-timeout", CommitTimeout, TimeSpan.FromMilliseconds(100)),
                 })
        {
            if (value < min || value > MaxTimeout)
            {
                return $"{name} = {value}; expected {min}..{MaxTimeout}";
            }
        }

        if (SlowLoads is null || SlowLoads.Count > MaxSlowLoads)
        {
            return $"{SlowLoads?.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no"} slow-load entries; expected 0..{MaxSlowLoads}";
        }

        foreach (var s in SlowLoads)
        {
            if (s is null || !deviceIds.Contains(s.Device))
            {
                return $"slow-load for device '{s?.Device}'; expected one of the guest's devices ({string.Join(", ", deviceIds)})";
            }

            if (!double.IsFinite(s.MsPerMiB) || s.MsPerMiB is < 0 or > MaxLoadDelayMsPerMiB)
            {
                return $"slow-load {s.Device} = {s.MsPerMiB} ms/MiB; expected 0..{MaxLoadDelayMsPerMiB}";
            }
        }

        if (!double.IsFinite(HoldVerifyMs) || HoldVerifyMs is < 0 or > MaxHoldMs)
        {
            return $"hold:verify = {HoldVerifyMs} ms; expected 0..{MaxHoldMs}";
        }

        if (!double.IsFinite(HoldSetupMs) || HoldSetupMs is < 0 or > MaxHoldMs)
        {
            return $"hold:setup = {HoldSetupMs} ms; expected 0..{MaxHoldMs}";
        }

        if (!double.IsFinite(HoldResumeMs) || HoldResumeMs is < 0 or > MaxHoldMs)
        {
            return $"hold:resume = {HoldResumeMs} ms; expected 0..{MaxHoldMs}";
        }

        return null;
    }

    /// <summary>
    /// The destination's settings for this migration: its own node settings (listener, TLS, timeouts it enforces) with
    /// the per-migration fields from these parameters, and a budget of min(requested, <paramref name="budgetCap"/>).
    /// Returns null with <paramref name="refusal"/> when the request cannot be met within the cap (a chunk larger than it).
    /// Call after <see cref="Problem"/> returned null.
    /// </summary>
    public MigrationSettings? ForDestination(MigrationSettings node, long budgetCap, out string refusal)
    {
        if (ChunkSize > budgetCap)
        {
            refusal = $"chunk-size = {ChunkSize} bytes exceeds this node's max-device-buffer-budget = {budgetCap} bytes (a chunk must fit in the budget)";
            return null;
        }

        refusal = "";
        return node with
        {
            Channels = Channels,
            Codec = Codec,
            CodecLevel = CodecLevel,
            ZeroPageDetection = ZeroPageDetection,
            PacketPages = PacketPages,
            ChunkSize = ChunkSize,
            DeviceBufferBudget = Math.Min(DeviceBufferBudget, budgetCap),
            PrefaultDestination = PrefaultDestination,
            ChannelIdleTimeout = ChannelIdleTimeout,
            ChannelReconnectTimeout = ChannelReconnectTimeout,
            CommitTimeout = CommitTimeout,
            Inject = SlowLoads.Select(s => new FaultInjection(FaultInjection.SlowLoad, "load", 0, s.Device, s.MsPerMiB))
                .Concat(HoldVerifyMs > 0 ? [new FaultInjection(FaultInjection.Hold, "verify", 0, null, HoldVerifyMs)] : [])
                .Concat(HoldSetupMs > 0 ? [new FaultInjection(FaultInjection.Hold, "setup", 0, null, HoldSetupMs)] : [])
                .Concat(HoldResumeMs > 0 ? [new FaultInjection(FaultInjection.Hold, "resume", 0, null, HoldResumeMs)] : [])
                .ToArray(),
        };
    }

    /// <summary>Device id -> injected load delay (ms per MiB) from a destination's effective settings (empty = none).</summary>
    public static IReadOnlyDictionary<string, double> LoadDelays(MigrationSettings effective) =>
        effective.Inject.Where(f => f.Kind == FaultInjection.SlowLoad && f.Device is not null)
            .GroupBy(f => f.Device!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);
}

/// <summary>One injected load delay: <paramref name="Device"/> loads with <paramref name="MsPerMiB"/> ms per MiB on the destination.</summary>
public sealed record SlowLoad(string Device, double MsPerMiB);
