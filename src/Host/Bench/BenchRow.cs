using System.Text;
using System.Text.Json;

namespace Migration.Host.Bench;

/// <summary>
/// One measured migration. Null means "not measurable in this mode" (e.g. the destination's CPU when both nodes
/// share one process). See docs/benchmarks.md for how each figure is taken.
/// </summary>
public sealed record BenchRow
{
    public string Scenario { get; init; } = "";
    public int Channels { get; init; }
    public string Codec { get; init; } = "none";
    public int Processes { get; init; }
    public long RamBytes { get; init; }

    /// <summary>The report's TotalMs: StartMigration received by the source node until the guest resumed on the destination.</summary>
    public double TotalMs { get; init; }

    /// <summary>Guest RAM bytes / total time, in 10^9 bytes per second.</summary>
    public double GbPerSec => TotalMs <= 0 ? 0 : RamBytes / (TotalMs / 1000.0) / 1e9;

    public double DowntimeMs { get; init; }
    public double? CpuSecondsSource { get; init; }
    public double? CpuSecondsDestination { get; init; }

    /// <summary>The destination child's system (kernel) CPU-seconds over the migration: about 1.3 per GiB when its fresh memory was unbacked, 0.1-0.2 when backed.</summary>
    public double? CpuSystemSecondsDestination { get; init; }

    /// <summary>Bytes allocated on the managed heap of the bench process during the migration, in MiB per GiB of guest RAM.</summary>
    public double AllocMiBPerGiB { get; init; }

    public int Gen2Collections { get; init; }

    /// <summary>Normal pages sent raw although a codec was negotiated (the early-abort probe found them incompressible).</summary>
    public long UncompressedPages { get; init; }

    /// <summary>Normal pages sent (raw or compressed).</summary>
    public long NormalPages { get; init; }
    public long? PeakWorkingSetSourceBytes { get; init; }
    public long? PeakWorkingSetDestinationBytes { get; init; }
    public bool Verified { get; init; }

    // Extra fields (not required by the issue; documented in docs/benchmarks.md).
    public bool PrefaultDestination { get; init; } = true;
    public string Status { get; init; } = "";
    public double SetupMs { get; init; }
    public int Iterations { get; init; }
    public bool ForcedSwitchover { get; init; }
    public long DeviceStateBytes { get; init; }
    public long DeviceBufferBudgetBytes { get; init; }
    public long WireBytes { get; init; }

    /// <summary>
    /// Destination working set before the migration started, for "memory beyond guest RAM": the idle node, without
    /// the memory its pool held then (<see cref="DestinationPoolHeldBytes"/>, populated for the guest by
    /// `--destination-memory warm`).
    /// </summary>
    public long? IdleWorkingSetDestinationBytes { get; init; }

    /// <summary>Bytes the destination's memory pool held (resident, pre-touched) at the idle reading; 0 with a fresh destination.</summary>
    public long DestinationPoolHeldBytes { get; init; }

    /// <summary>
    /// What the pool held and the guest did not take, still held after the migration: min(held before - reused, held
    /// after). Left out of <see cref="DestinationBeyondGuestBytes"/>: memory kept for the next guest, not spent on this one.
    /// </summary>
    public long DestinationPoolSpareBytes { get; init; }

    /// <summary>
    /// Peak destination working set minus guest RAM: the idle node (<see cref="IdleWorkingSetDestinationBytes"/>: .NET,
    /// Akka, the cluster; present whether or not a guest arrives) plus what the incoming migration added
    /// (<see cref="DestinationGrowthBeyondGuestBytes"/>). The simulated devices' state is not part of it: a
    /// SimulatedVfioDevice holds only a version and a hash per 64 KiB region (about 70 KiB for 256 MiB), never its bytes.
    /// </summary>
    public long? DestinationBeyondGuestBytes =>
        PeakWorkingSetDestinationBytes is { } p ? p - RamBytes - DestinationPoolSpareBytes : null;

    /// <summary>Peak private memory of the destination process (<see cref="PrivateMemory"/>: RSS without mapped files); null with one process or without /proc.</summary>
    public long? PeakPrivateDestinationBytes { get; init; }

    /// <summary>The destination's private memory just before the migration, the pool's held bytes left out (as <see cref="IdleWorkingSetDestinationBytes"/>).</summary>
    public long? IdlePrivateDestinationBytes { get; init; }

    /// <summary>
    /// <see cref="DestinationBeyondGuestBytes"/> counted in private memory: peak private memory minus guest RAM and the
    /// pool's spare bytes. What the node costs beyond its guest without the runtime's mapped files (page cache shared
    /// with every process mapping them); reported beside the working-set figure, which stays the figure of record.
    /// </summary>
    public long? DestinationPrivateBeyondGuestBytes =>
        PeakPrivateDestinationBytes is { } p ? p - RamBytes - DestinationPoolSpareBytes : null;

    /// <summary>
    /// What the incoming migration added to the destination beyond guest RAM: <see cref="DestinationBeyondGuestBytes"/>
    /// minus the idle node's working set measured just before the migration (device chunk buffers up to the device
    /// budget, receive buffers, heap growth).
    /// </summary>
    public long? DestinationGrowthBeyondGuestBytes =>
        DestinationBeyondGuestBytes is { } b && IdleWorkingSetDestinationBytes is { } idle ? b - idle : null;

    /// <summary>
    /// Allocation in the bench process between the first and the last progress report of the precopy phase, per GiB
    /// sent meanwhile (null when precopy was too short for two reports or moved less than 64 MiB).
    /// </summary>
    public double? SteadyAllocMiBPerGiB { get; init; }

    /// <summary>Gen2 collections in the bench process over the same window.</summary>
    public int? SteadyGen2Collections { get; init; }

    /// <summary>"fresh" (the destination maps new anonymous memory) or "warm" (its pool was populated before: pre-touched).</summary>
    public string DestinationMemory { get; init; } = "fresh";

    /// <summary>Bytes of the destination's memory pool handed to the measured guest (0 with fresh destination memory).</summary>
    public long DestinationPoolReusedBytes { get; init; }

    /// <summary>The destination node's own allocation from prepare to verification, per GiB of guest RAM (its report).</summary>
    public double? AllocMiBPerGiBDestination { get; init; }

    /// <summary>The destination node's allocation while pages and device chunks streamed, per GiB delivered (RAM and device bytes; its report).</summary>
    public double? SteadyAllocMiBPerGiBDestination { get; init; }

    /// <summary>The destination node's populate-ahead and populate-threads when the bench overrode them (diagnostics), else null.</summary>
    public long? PopulateAheadBytes { get; init; }

    /// <summary>`--free-before`: bytes the bench touched before the guest was created and freed just before the migration (null: none).</summary>
    public long? FreedBeforeBytes { get; init; }

    public int? PopulateThreads { get; init; }

    public string? Error { get; init; }
}

/// <summary>Writes `{"rows": [...]}` with the field names of issue 5.</summary>
public static class BenchJson
{
    public static string Serialize(IReadOnlyList<BenchRow> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("rows");
            foreach (var r in rows)
            {
                w.WriteStartObject();
                w.WriteString("scenario", r.Scenario);
                w.WriteNumber("channels", r.Channels);
                w.WriteString("codec", r.Codec);
                w.WriteNumber("processes", r.Processes);
                w.WriteNumber("ramBytes", r.RamBytes);
                w.WriteNumber("totalMs", Math.Round(r.TotalMs, 1));
                w.WriteNumber("gbPerSec", Math.Round(r.GbPerSec, 4));
                w.WriteNumber("downtimeMs", Math.Round(r.DowntimeMs, 1));
                Number(w, "cpuSecondsSource", r.CpuSecondsSource, 3);
                Number(w, "cpuSecondsDestination", r.CpuSecondsDestination, 3);
                Number(w, "cpuSystemSecondsDestination", r.CpuSystemSecondsDestination, 3);
                w.WriteNumber("allocMiBPerGiB", Math.Round(r.AllocMiBPerGiB, 3));
                w.WriteNumber("gen2Collections", r.Gen2Collections);
                Number(w, "peakWorkingSetSourceBytes", r.PeakWorkingSetSourceBytes);
                Number(w, "peakWorkingSetDestinationBytes", r.PeakWorkingSetDestinationBytes);
                w.WriteBoolean("verified", r.Verified);
                w.WriteString("status", r.Status);
                w.WriteBoolean("prefaultDestination", r.PrefaultDestination);
                w.WriteNumber("setupMs", Math.Round(r.SetupMs, 1));
                w.WriteNumber("iterations", r.Iterations);
                w.WriteBoolean("forcedSwitchover", r.ForcedSwitchover);
                w.WriteNumber("deviceStateBytes", r.DeviceStateBytes);
                w.WriteNumber("deviceBufferBudgetBytes", r.DeviceBufferBudgetBytes);
                w.WriteNumber("wireBytes", r.WireBytes);
                w.WriteNumber("normalPages", r.NormalPages);
                w.WriteNumber("uncompressedPages", r.UncompressedPages);
                Number(w, "idleWorkingSetDestinationBytes", r.IdleWorkingSetDestinationBytes);
                Number(w, "destinationBeyondGuestBytes", r.DestinationBeyondGuestBytes);
                Number(w, "destinationGrowthBeyondGuestBytes", r.DestinationGrowthBeyondGuestBytes);
                Number(w, "peakPrivateDestinationBytes", r.PeakPrivateDestinationBytes);
                Number(w, "idlePrivateDestinationBytes", r.IdlePrivateDestinationBytes);
                Number(w, "destinationPrivateBeyondGuestBytes", r.DestinationPrivateBeyondGuestBytes);
                Number(w, "steadyAllocMiBPerGiB", r.SteadyAllocMiBPerGiB, 3);
                Number(w, "steadyGen2Collections", r.SteadyGen2Collections);
                w.WriteString("destinationMemory", r.DestinationMemory);
                w.WriteNumber("destinationPoolReusedBytes", r.DestinationPoolReusedBytes);
                w.WriteNumber("destinationPoolHeldBytes", r.DestinationPoolHeldBytes);
                w.WriteNumber("destinationPoolSpareBytes", r.DestinationPoolSpareBytes);
                Number(w, "allocMiBPerGiBDestination", r.AllocMiBPerGiBDestination, 3);
                Number(w, "steadyAllocMiBPerGiBDestination", r.SteadyAllocMiBPerGiBDestination, 3);
                Number(w, "populateAheadBytes", r.PopulateAheadBytes);
                Number(w, "freedBeforeBytes", r.FreedBeforeBytes);
                Number(w, "populateThreads", r.PopulateThreads);
                if (r.Error is null)
                {
                    w.WriteNull("error");
                }
                else
                {
                    w.WriteString("error", r.Error);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static void Write(IReadOnlyList<BenchRow> rows, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        File.WriteAllText(path, Serialize(rows) + "\n");
    }

    private static void Number(Utf8JsonWriter w, string name, double? value, int digits)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, Math.Round(v, digits));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void Number(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
