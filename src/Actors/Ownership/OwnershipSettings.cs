using Akka.Configuration;

namespace Migration.Actors.Ownership;

/// <summary>
/// Node settings of the majority-confirmed ownership record (HOCON <c>migration.ownership</c>, hocon/migration.conf).
/// Enforced by each node; never carried by a migration's parameters.
/// </summary>
public sealed record OwnershipSettings(TimeSpan MajorityTimeout)
{
    public static OwnershipSettings From(Config config)
    {
        var timeout = config.GetTimeSpan("migration.ownership.majority-timeout", TimeSpan.FromSeconds(3));
        if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromMinutes(5))
        {
            throw new ArgumentException($"migration.ownership.majority-timeout = {timeout} must be above 0 and at most 5 minutes");
        }

        return new OwnershipSettings(timeout);
    }
}
