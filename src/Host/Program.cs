using System.CommandLine;
using Migration.Host.Demo;

namespace Migration.Host;

/// <summary>Entry point: `demo` (embedded two-node migration); later `node`, the cluster CLI and `bench`.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Live migration of virtual machines over parallel TCP channels, on Akka.NET")
        {
            DemoCommand.Create(),
            Node.NodeCommand.Create(),
            Bench.BenchCommand.Create(),
        };
        foreach (var c in Cli.CliCommands.Create())
        {
            root.Subcommands.Add(c);
        }

        return await root.Parse(args).InvokeAsync();
    }
}
