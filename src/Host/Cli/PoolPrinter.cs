using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Spectre.Console;

namespace Migration.Host.Cli;

/// <summary>The "memory pool" lines under `vm list`: one per node, what its pool of touched guest memory holds.</summary>
public static class PoolPrinter
{
    public static string Line(string node, MemoryPoolInfo p) =>
        $"memory pool on {node}: {ByteSize.Format(p.HeldBytes)} held ({ByteSize.Format(p.ReadyBytes)} ready) of at most {ByteSize.Format(p.MaxBytes)}; " +
        $"{ByteSize.Format(p.ReusedBytes)} reused by incoming guests, {ByteSize.Format(p.PopulatedBytes)} populated";

    public static void Print(IReadOnlyList<(NodeInfo Node, MemoryPoolInfo Pool)> pools)
    {
        foreach (var (node, pool) in pools)
        {
            AnsiConsole.MarkupLine(Markup.Escape(Line(node.Name, pool)));
        }
    }
}
