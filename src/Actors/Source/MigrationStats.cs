using System.Diagnostics;
using Migration.Actors.Messages;

namespace Migration.Actors.Source;

/// <summary>Counters of one migration on the source; owned by the coordinator, touched only on its thread.</summary>
public sealed class MigrationStats
{
    private long _loadedBytes;
    private long _loadTicks;

    public long WireBytes { get; private set; }
    public long RamWireBytes { get; private set; }
    public long DeviceBytes { get; private set; }
    public long NormalPages { get; private set; }
    public long ZeroPages { get; private set; }
    public long UncompressedPages { get; private set; }
    public double LastExpectedDowntimeMs { get; set; }

    /// <summary>Device bytes the destination holds now, as reported with its latest credit.</summary>
    public long DestinationBufferedBytes { get; private set; }

    public IncomingStats? Incoming { get; set; }

    public void Add(JobDone d)
    {
        WireBytes += d.WireBytes;
        switch (d.Kind)
        {
            case JobKind.Ram:
                RamWireBytes += d.WireBytes;
                NormalPages += d.NormalPages;
                ZeroPages += d.ZeroPages;
                UncompressedPages += d.UncompressedPages;
                break;
            case JobKind.Device:
                DeviceBytes += d.DeviceBytes;
                break;
        }
    }

    public void OnCredit(DeviceCredit c)
    {
        _loadedBytes += c.Bytes;
        _loadTicks += c.LoadTicks;
        DestinationBufferedBytes = c.BufferedBytes;
    }

    public double TransferRateBytesPerMs(double elapsedMs) => elapsedMs <= 0 ? 0 : WireBytes / elapsedMs;

    /// <summary>Destination device load rate (bytes per ms of load time), 0 while unknown.</summary>
    public double LoadRateBytesPerMs() =>
        _loadTicks == 0 ? 0 : _loadedBytes / (_loadTicks * 1000.0 / Stopwatch.Frequency);
}
