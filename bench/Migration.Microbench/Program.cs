using System.Runtime.Intrinsics;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using Migration.Microbench;

// Entry: `dotnet run -c Release --project bench/Migration.Microbench -- --filter '*'` (any BenchmarkDotNet switch works).
// A short job (1 launch, 3 warmups, 5 iterations) keeps the whole suite to a few minutes on 2 cores.
var config = DefaultConfig.Instance
    .AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(5).WithId("Short"))
    .AddColumn(new ThroughputColumn())
    .AddDiagnoser(MemoryDiagnoser.Default)
    .WithOptions(ConfigOptions.JoinSummary);

var summaries = BenchmarkSwitcher.FromAssembly(typeof(BenchData).Assembly).Run(args, config).ToArray();

// A compact GB/s table computed from the measured means, for docs/benchmarks.md.
Console.WriteLine();
Console.WriteLine($"Vector512 accelerated: {Vector512.IsHardwareAccelerated}, Vector256: {Vector256.IsHardwareAccelerated}");
Console.WriteLine("| benchmark | parameters | mean | GB/s |");
Console.WriteLine("|---|---|---:|---:|");
foreach (var summary in summaries)
{
    foreach (var report in summary.Reports)
    {
        var benchmark = report.BenchmarkCase;
        var mean = report.ResultStatistics?.Mean;
        var gbs = ThroughputColumn.GigabytesPerSecond(summary, benchmark);
        var parameters = benchmark.HasParameters ? benchmark.Parameters.DisplayInfo : "";
        var meanText = mean is null ? "failed" : mean.Value >= 1e6 ? $"{mean.Value / 1e6:F2} ms" : mean.Value >= 1e4 ? $"{mean.Value / 1e3:F1} us" : $"{mean.Value:F0} ns";
        Console.WriteLine($"| {benchmark.Descriptor.Type.Name}.{benchmark.Descriptor.WorkloadMethod.Name} | {parameters} | {meanText} | {(gbs is { } g ? g.ToString("F2") : "-")} |");
    }
}
