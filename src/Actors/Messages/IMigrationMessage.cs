namespace Migration.Actors.Messages;

/// <summary>
/// Marker of every control-plane message that may cross nodes. hocon/cluster.conf binds it to Hyperion;
/// without the binding Akka would fall back to JSON silently. Data-path messages that never leave the
/// process (they carry rented buffers or sockets) implement Akka's INoSerializationVerificationNeeded instead.
/// </summary>
public interface IMigrationMessage;

/// <summary>Generic negative reply to a command that does not fit the receiver's state or arguments.</summary>
public sealed record CommandFailed(string Reason, string Code = "error") : IMigrationMessage;
