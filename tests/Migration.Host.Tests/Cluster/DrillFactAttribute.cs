using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// A long fault drill (node processes killed or stopped in every phase): skipped by the normal test command, run with
/// <c>MIGRATION_DRILL=1 dotnet test tests/Migration.Host.Tests -c Release --filter "FullyQualifiedName~OwnershipFaultDrills"</c>
/// (README, "Fault drills"). A representative subset of the same cases runs in every test run.
/// </summary>
public sealed class DrillTheoryAttribute : TheoryAttribute
{
    public const string Variable = "MIGRATION_DRILL";

    public DrillTheoryAttribute()
    {
        if (Environment.GetEnvironmentVariable(Variable) != "1")
        {
            Skip = $"long fault drill: set {Variable}=1 to run it (README, \"Fault drills\")";
        }
    }
}
