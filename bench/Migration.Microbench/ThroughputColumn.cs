using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Migration.Microbench;

/// <summary>GB/s (10^9 bytes per second) = [BytesPerOperation] / mean time of one operation.</summary>
public sealed class ThroughputColumn : IColumn
{
    public static long? BytesOf(BenchmarkCase benchmark) =>
        benchmark.Descriptor.WorkloadMethod.GetCustomAttribute<BytesPerOperationAttribute>()?.Bytes;

    /// <summary>GB/s for a finished case, or null if it has no byte count or no result.</summary>
    public static double? GigabytesPerSecond(Summary summary, BenchmarkCase benchmark)
    {
        var bytes = BytesOf(benchmark);
        var meanNs = summary[benchmark]?.ResultStatistics?.Mean;
        return bytes is null || meanNs is null or <= 0 ? null : bytes.Value / meanNs.Value; // bytes/ns == GB/s
    }

    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Throughput in 10^9 bytes per second (bytes per operation / mean)";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GigabytesPerSecond(summary, benchmarkCase) is { } g ? g.ToString("F2") : "-";
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
}
