namespace Migration.Actors.Messages;

// Operator commands that change a running migration (CLI `set` and `switchover`). Sent to the source node's
// HypervisorNode, which forwards them to the migration's coordinator, like CancelMigration. A migration the node does
// not know answers CommandFailed("unknown-migration"), one that ended CommandFailed("ended"), one past the stop
// CommandFailed("too-late").

/// <summary>
/// Change a running migration: the downtime limit (ms, > 0), the precopy bandwidth limit (bytes/s, 0 = unlimited),
/// auto-converge on or off. Null leaves a parameter as it is. Reply: MigrationParametersChanged with the values now in
/// force, or CommandFailed("bad-settings") naming the bad value.
/// </summary>
public sealed record SetMigrationParameters(Guid MigrationId, double? DowntimeLimitMs, long? MaxBandwidth, bool? AutoConverge) : IMigrationMessage;

public sealed record MigrationParametersChanged(Guid MigrationId, double DowntimeLimitMs, long MaxBandwidth, bool AutoConverge, string Phase) : IMigrationMessage;

/// <summary>
/// Stop the guest at the next precopy iteration boundary whatever the expected downtime (the report's switchoverReason
/// is then "forced-by-operator"). Reply: SwitchoverAccepted, or CommandFailed when the migration is past precopy.
/// </summary>
public sealed record ForceSwitchover(Guid MigrationId) : IMigrationMessage;

public sealed record SwitchoverAccepted(Guid MigrationId, string Phase) : IMigrationMessage;
