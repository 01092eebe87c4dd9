using Migration.Actors.Drain;
using Xunit;

namespace Migration.Actors.Tests.Drain;

/// <summary>Where a drained guest goes: the allowed, uncordoned node with the most free memory that holds it.</summary>
public sealed class DrainPlacementTests
{
    private const long GiB = 1L << 30;
    private static readonly Dictionary<string, long> NoneReserved = new();

    private static NodeCapacity Node(string name, long capacity, long used, bool cordoned = false) => new(name, capacity, used, [], cordoned);

    [Fact]
    public void The_node_with_the_most_free_memory_is_chosen_and_never_the_source()
    {
        var nodes = new[] { Node("src", 100 * GiB, 0), Node("a", 16 * GiB, 10 * GiB), Node("b", 16 * GiB, 4 * GiB) };
        Assert.Equal("b", DrainPlacement.Choose(2 * GiB, "src", nodes, [], [], NoneReserved, out _));
    }

    [Fact]
    public void Reserved_memory_counts_against_a_node()
    {
        var nodes = new[] { Node("a", 16 * GiB, 4 * GiB), Node("b", 16 * GiB, 6 * GiB) };
        var reserved = new Dictionary<string, long> { ["a"] = 5 * GiB };
        Assert.Equal("b", DrainPlacement.Choose(2 * GiB, "src", nodes, [], [], reserved, out _));
    }

    [Fact]
    public void Cordoned_excluded_and_not_allowed_nodes_are_never_chosen()
    {
        var nodes = new[] { Node("a", 64 * GiB, 0, cordoned: true), Node("b", 64 * GiB, 0), Node("c", 32 * GiB, 0), Node("d", 8 * GiB, 0) };
        Assert.Equal("c", DrainPlacement.Choose(GiB, "src", nodes, [], ["b"], NoneReserved, out _));
        Assert.Equal("d", DrainPlacement.Choose(GiB, "src", nodes, ["a", "d"], [], NoneReserved, out _));
    }

    [Fact]
    public void A_guest_that_fits_nowhere_gets_no_node_and_a_reason_with_the_free_memory()
    {
        var nodes = new[] { Node("a", 4 * GiB, 3 * GiB), Node("b", 4 * GiB, 2 * GiB) };
        Assert.Null(DrainPlacement.Choose(3 * GiB, "src", nodes, [], [], NoneReserved, out var reason));
        Assert.Contains("no node has 3 GiB free", reason);
        Assert.Contains("b 2 GiB free", reason);

        Assert.Null(DrainPlacement.Choose(GiB, "a", [Node("a", 4 * GiB, 0)], [], [], NoneReserved, out reason));
        Assert.Contains("no node to move it to", reason);
    }

    [Fact]
    public void Equal_free_memory_goes_to_the_lower_address_so_placement_is_repeatable()
    {
        var nodes = new[] { Node("c", 8 * GiB, 0), Node("a", 8 * GiB, 0), Node("b", 8 * GiB, 0) };
        Assert.Equal("a", DrainPlacement.Choose(GiB, "src", nodes, [], [], NoneReserved, out _));
    }
}
