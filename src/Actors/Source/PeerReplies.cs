using System.Net;
using Migration.Actors.Messages;
using Migration.Transport.Wire;

namespace Migration.Actors.Source;

/// <summary>
/// The source coordinator's checks of what the destination node sends, peer input like wire input: fields a
/// Hyperion message may carry as null or out of range are refused before use, saying what arrived and what was
/// expected. Pure; called on the coordinator's thread. (A DeviceCredit's range and bytes are checked by the ledger and the
/// credit pool; its device and its reported figures here.)
/// </summary>
public static class PeerReplies
{
    /// <summary>Null when the acknowledgement is usable for migration <paramref name="id"/>, else the problem.</summary>
    public static string? PrepareAckProblem(PrepareAck ack, Guid id)
    {
        if (ack.MigrationId != id)
        {
            return $"prepare acknowledgement for migration {ack.MigrationId}, expected {id}";
        }

        if (ack.Incoming is null || ack.Host is null || !IPAddress.TryParse(ack.Host, out _))
        {
            return $"prepare acknowledgement with channel host '{ack.Host}' and incoming actor {(ack.Incoming is null ? "missing" : "set")}; expected an IP address and the actor";
        }

        if (ack.Port is < 1 or > 65535)
        {
            return $"prepare acknowledgement with channel port {ack.Port}; expected 1..65535";
        }

        if (ack.Token is null || ack.Token.Length != WireConstants.TokenLength)
        {
            return $"prepare acknowledgement with a token of {ack.Token?.Length ?? 0} bytes; expected {WireConstants.TokenLength}";
        }

        return null;
    }

    /// <summary>
    /// Most load time one credit may report: an hour of Stopwatch ticks (the nodes' clocks tick alike, docs/protocol.md),
    /// far beyond any load the destination's timeouts let run, so a peer's value can never overflow the sum of load
    /// ticks behind the load-rate estimate (MigrationStats).
    /// </summary>
    public static readonly long MaxLoadTicksPerCredit = System.Diagnostics.Stopwatch.Frequency * 3600;

    /// <summary>
    /// Null when the credit names one of the guest's <paramref name="devices"/> and reports figures the estimates can use
    /// (load time within 0..<see cref="MaxLoadTicksPerCredit"/>, buffered bytes within 0..the granted <paramref name="budgetBytes"/>),
    /// else the problem. Its range and byte sum are the ledger's to check (SentChunkLedger.Credited).
    /// </summary>
    public static string? CreditProblem(DeviceCredit c, int devices, long budgetBytes)
    {
        if (c.DeviceIndex < 0 || c.DeviceIndex >= devices)
        {
            return $"credit for device {c.DeviceIndex}; the guest has {devices} devices";
        }

        if (c.LoadTicks < 0 || c.LoadTicks > MaxLoadTicksPerCredit || c.BufferedBytes < 0 || c.BufferedBytes > budgetBytes)
        {
            return $"credit for device {c.DeviceIndex} reporting {c.LoadTicks} load ticks and {c.BufferedBytes} buffered bytes; " +
                   $"expected load ticks in 0..{MaxLoadTicksPerCredit} (one hour) and buffered bytes in 0..{budgetBytes} (the budget)";
        }

        return null;
    }

    /// <summary>Null when the resume has its device receipts (one per device, none null), else the problem.</summary>
    public static string? ChannelResumeProblem(ChannelResume r, int devices)
    {
        if (r.Devices is null || r.Devices.Length != devices || r.Devices.Any(d => d is null || d.Held is null || d.Next < 0))
        {
            return $"channel resume for channel {r.Channel} with {r.Devices?.Length ?? 0} device receipts (some missing or negative); expected {devices} receipts";
        }

        return null;
    }
}
