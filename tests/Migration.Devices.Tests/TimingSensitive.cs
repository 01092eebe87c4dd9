using Xunit;

namespace Migration.Devices.Tests;

/// <summary>
/// Tests that assert on elapsed time or rates run alone (after the parallel ones): the CI machines have two
/// cores, and a neighbour filling a GiB would make them flaky.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingSensitive
{
    public const string Name = "timing-sensitive";
}
