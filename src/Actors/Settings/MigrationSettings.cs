using Akka.Configuration;
using Migration.Devices.Ram;
using Migration.Transport.Codecs;

namespace Migration.Actors.Settings;

/// <summary>
/// Every tunable of a migration, read once from the `migration` section of HOCON (hocon/migration.conf)
/// and overridden per migration by the CLI. Immutable; carried inside control-plane messages.
/// </summary>
public sealed record MigrationSettings
{
    public int Channels { get; init; } = 4;
    public CodecId Codec { get; init; } = CodecId.None;
    public int CodecLevel { get; init; } = 1;
    public bool ZeroPageDetection { get; init; } = true;
    public int PacketPages { get; init; } = 128;
    public int ChunkSize { get; init; } = 1 << 20;
    public long DeviceBufferBudget { get; init; } = 64L << 20;
    public int DeviceReadAhead { get; init; } = 8;

    /// <summary>A destination gate returns device credit for at most this many loaded chunks in one DeviceCredit.</summary>
    public int CreditBatchChunks { get; init; } = 8;

    /// <summary>... and holds a loaded chunk's credit at most about this long before returning it.</summary>
    public TimeSpan CreditBatchInterval { get; init; } = TimeSpan.FromMilliseconds(2);
    public int DeviceWorkers { get; init; }
    public TimeSpan DowntimeLimit { get; init; } = TimeSpan.FromMilliseconds(300);
    public int MaxIterations { get; init; } = 30;
    public TimeSpan MinIterationTime { get; init; } = TimeSpan.FromMilliseconds(50);
    public int ChannelQueueDepth { get; init; } = 2;
    public bool PrefaultDestination { get; init; }
    /// <summary>
    /// Fresh destination RAM kept populated this far ahead of the highest page received with content; 0 = off (RamPopulator),
    /// the default: on memory the host has reclaimed it made random-2g 1.6-1.8x slower than receivers that fault their own pages
    /// (docs/benchmarks.md, "Fresh destination on unbacked memory, both sides").
    /// </summary>
    public long PopulateAhead { get; init; }

    /// <summary>Threads that populate ahead (RamPopulator claims slices for them atomically); 0 = min(2, cores).</summary>
    public int PopulateThreads { get; init; }

    /// <summary><see cref="PopulateThreads"/> with 0 resolved to min(2, this machine's cores).</summary>
    public int EffectivePopulateThreads => PopulateThreads > 0 ? PopulateThreads : Math.Min(2, Environment.ProcessorCount);
    public TimeSpan PrepareTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan ChannelIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a channel lost before the guest stops may take to reconnect; zero = a lost channel fails the migration.</summary>
    public TimeSpan ChannelReconnectTimeout { get; init; } = TimeSpan.FromSeconds(40);

    public bool ReconnectEnabled => ChannelReconnectTimeout > TimeSpan.Zero;
    public TimeSpan VerifyTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an aborted migration waits for each device saver to put its device back to running before it reports its end.</summary>
    public TimeSpan DeviceAbortTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    public string ListenerHost { get; init; } = "127.0.0.1";
    public int ListenerPort { get; init; }

    /// <summary>TLS on the data channels (node setting): PEM certificate, key and CA; off when Certificate is empty.</summary>
    public string TlsCertificate { get; init; } = "";
    public string TlsKey { get; init; } = "";
    public string TlsCa { get; init; } = "";

    public bool TlsEnabled => TlsCertificate.Length > 0;

    /// <summary>Faults to inject (see <see cref="FaultInjection"/>); empty in normal operation.</summary>
    public IReadOnlyList<FaultInjection> Inject { get; init; } = [];

    /// <summary>Guest memory this node may hold (RAM of its guests and of incoming ones); 0 = the machine's memory.</summary>
    public long NodeMemoryCapacity { get; init; }

    /// <summary>Node setting: the most device buffer budget one incoming migration gets, whatever its source asks; 0 = 1/8 of the node memory capacity.</summary>
    public long MaxDeviceBufferBudget { get; init; }

    /// <summary>Node setting: how long an accepted data connection may take to send its hello (TLS included) before it is closed.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Precopy bandwidth cap over all channels together, bytes per second; 0 = unlimited. The stop-copy phase runs at full speed.</summary>
    public long MaxBandwidth { get; init; }

    /// <summary>Throttling the guest when precopy does not converge (migration.auto-converge).</summary>
    public AutoConvergeSettings AutoConverge { get; init; } = new();

    /// <summary>
    /// Stop-copy rate as a fraction of the measured precopy rate, used for the downtime estimate until this node has
    /// measured a stop-copy phase of its own (see docs/architecture.md "Downtime estimate").
    /// </summary>
    public double StopCopyRateFactor { get; init; } = 1.0;

    /// <summary>Reads the `migration` section; missing keys keep the defaults above.</summary>
    public static MigrationSettings FromConfig(Config config)
    {
        var c = config.GetConfig("migration");
        if (c is null || c.IsEmpty)
        {
            return new MigrationSettings();
        }

        var d = new MigrationSettings();
        var codecName = c.GetString("codec", "none");
        if (!RamCodecRegistry.TryParse(codecName, out var codec))
        {
            throw new ConfigurationException($"migration.codec = '{codecName}'; expected none, zstd or lz4");
        }

        var s = new MigrationSettings
        {
            Channels = c.GetInt("channels", d.Channels),
            Codec = codec,
            CodecLevel = c.GetInt("codec-level", d.CodecLevel),
            ZeroPageDetection = c.GetBoolean("zero-page-detection", d.ZeroPageDetection),
            PacketPages = c.GetInt("packet-pages", d.PacketPages),
            ChunkSize = checked((int)Size(c, "chunk-size", d.ChunkSize)),
            DeviceBufferBudget = Size(c, "device-buffer-budget", d.DeviceBufferBudget),
            DeviceReadAhead = c.GetInt("device-read-ahead", d.DeviceReadAhead),
            CreditBatchChunks = c.GetInt("credit-batch-chunks", d.CreditBatchChunks),
            CreditBatchInterval = c.GetTimeSpan("credit-batch-interval", d.CreditBatchInterval),
            DeviceWorkers = c.GetInt("device-workers", d.DeviceWorkers),
            DowntimeLimit = c.GetTimeSpan("downtime-limit", d.DowntimeLimit),
            MaxIterations = c.GetInt("max-iterations", d.MaxIterations),
            MinIterationTime = c.GetTimeSpan("min-iteration-time", d.MinIterationTime),
            ChannelQueueDepth = c.GetInt("channel-queue-depth", d.ChannelQueueDepth),
            PrefaultDestination = c.GetBoolean("prefault-destination", d.PrefaultDestination),
            PopulateAhead = Size(c, "populate-ahead", d.PopulateAhead),
            PopulateThreads = c.GetInt("populate-threads", d.PopulateThreads),
            PrepareTimeout = c.GetTimeSpan("prepare-timeout", d.PrepareTimeout),
            ConnectTimeout = c.GetTimeSpan("connect-timeout", d.ConnectTimeout),
            ChannelIdleTimeout = c.GetTimeSpan("channel-idle-timeout", d.ChannelIdleTimeout),
            ChannelReconnectTimeout = c.GetTimeSpan("channel-reconnect-timeout", d.ChannelReconnectTimeout),
            VerifyTimeout = c.GetTimeSpan("verify-timeout", d.VerifyTimeout),
            CommitTimeout = c.GetTimeSpan("commit-timeout", d.CommitTimeout),
            DeviceAbortTimeout = c.GetTimeSpan("device-abort-timeout", d.DeviceAbortTimeout),
            ProgressInterval = c.GetTimeSpan("progress-interval", d.ProgressInterval),
            ListenerHost = c.GetString("listener.host", d.ListenerHost),
            ListenerPort = c.GetInt("listener.port", d.ListenerPort),
            NodeMemoryCapacity = Size(c, "node-memory-capacity", d.NodeMemoryCapacity),
            MaxDeviceBufferBudget = Size(c, "max-device-buffer-budget", d.MaxDeviceBufferBudget),
            HandshakeTimeout = c.GetTimeSpan("handshake-timeout", d.HandshakeTimeout),
            TlsCertificate = c.GetString("tls.certificate", ""),
            TlsKey = c.GetString("tls.key", ""),
            TlsCa = c.GetString("tls.ca", ""),
            MaxBandwidth = Size(c, "max-bandwidth", d.MaxBandwidth),
            AutoConverge = AutoConvergeSettings.FromConfig(c.GetConfig("auto-converge"), d.AutoConverge),
            StopCopyRateFactor = c.GetDouble("stop-copy-rate-factor", d.StopCopyRateFactor),
        };
        s.Validate();
        return s;
    }

    private static long Size(Config c, string key, long fallback)
    {
        var text = c.GetString(key, null);
        if (text is null)
        {
            return fallback;
        }

        return ByteSize.TryParse(text, out var v, out var error)
            ? v
            : throw new ConfigurationException($"migration.{key}: {error}");
    }

    /// <summary>Throws ArgumentException naming the first bad value.</summary>
    public void Validate()
    {
        Check(Channels is >= 1 and <= 64, $"channels = {Channels}; expected 1..64");
        Check(PacketPages is >= 1 and <= 1024, $"packet-pages = {PacketPages}; expected 1..1024");
        Check(ChunkSize is >= 4096 and <= 64 << 20, $"chunk-size = {ChunkSize} bytes; expected 4 KiB..64 MiB");
        Check(PopulateAhead >= 0, $"populate-ahead = {PopulateAhead} bytes; expected >= 0 (0 = off)");
        Check(PopulateThreads >= 0 && PopulateThreads <= RamPopulator.MaxThreads, $"populate-threads = {PopulateThreads}; expected 0..{RamPopulator.MaxThreads} (0 = min(2, cores))");
        Check(DeviceBufferBudget >= ChunkSize,
            $"device-buffer-budget = {DeviceBufferBudget} bytes is smaller than chunk-size = {ChunkSize} bytes; a chunk must fit in the budget");
        Check(DeviceReadAhead is >= 1 and <= 1024, $"device-read-ahead = {DeviceReadAhead}; expected 1..1024");
        Check(CreditBatchChunks is >= 1 and <= 1024, $"credit-batch-chunks = {CreditBatchChunks}; expected 1..1024");
        Check(CreditBatchInterval >= TimeSpan.Zero && CreditBatchInterval <= TimeSpan.FromSeconds(1),
            $"credit-batch-interval = {CreditBatchInterval}; expected 0..1 s");
        Check(DeviceWorkers is >= 0 and <= 256, $"device-workers = {DeviceWorkers}; expected 0..256");
        Check(DowntimeLimit > TimeSpan.Zero, $"downtime-limit = {DowntimeLimit}; expected > 0");
        Check(MaxIterations is >= 1 and <= 10_000, $"max-iterations = {MaxIterations}; expected 1..10000");
        Check(ChannelQueueDepth is >= 1 and <= 64, $"channel-queue-depth = {ChannelQueueDepth}; expected 1..64");
        Check(CodecLevel is >= 0 and <= 22, $"codec-level = {CodecLevel}; expected 0..22");
        Check(DeviceAbortTimeout > TimeSpan.Zero, $"device-abort-timeout = {DeviceAbortTimeout}; expected > 0");
        Check(ChannelReconnectTimeout >= TimeSpan.Zero, $"channel-reconnect-timeout = {ChannelReconnectTimeout}; expected >= 0 (0 = off)");
        Check(ListenerPort is >= 0 and <= 65535, $"listener.port = {ListenerPort}; expected 0..65535");
        Check(MaxDeviceBufferBudget >= 0, $"max-device-buffer-budget = {MaxDeviceBufferBudget}; expected >= 0 (0 = 1/8 of node-memory-capacity)");
        Check(HandshakeTimeout > TimeSpan.Zero && HandshakeTimeout <= TimeSpan.FromMinutes(1), $"handshake-timeout = {HandshakeTimeout}; expected > 0 and <= 1 min");
        Check(MaxBandwidth >= 0, $"max-bandwidth = {MaxBandwidth} bytes/s; expected >= 0 (0 = unlimited)");
        Check(StopCopyRateFactor is > 0 and <= 1, $"stop-copy-rate-factor = {StopCopyRateFactor}; expected > 0 and <= 1");
        AutoConverge.Validate();
    }

    private static void Check(bool ok, string message)
    {
        if (!ok)
        {
            throw new ArgumentException("invalid migration setting: " + message);
        }
    }
}
