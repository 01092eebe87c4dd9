using System.Globalization;

namespace Migration.Actors.Settings;

/// <summary>
/// A fault to inject into one migration, scripted with the same messages as everything else (CLI/demo
/// `--inject`), for tests and drills:
/// <c>drop-channel:N@precopy|stopcopy</c> closes channel N's connection abruptly;
/// <c>corrupt-packet@precopy|stopcopy</c> corrupts the next packet one channel sends (the payload of a device chunk,
/// else the packet's checksum), which the destination must detect;
/// <c>slow-load:DEVICE[=MS]</c> makes the destination load DEVICE with MS ms of delay per MiB (default 50);
/// <c>drop-commit</c> makes the source skip CommitMigration after it released the guest (as if the message were lost),
/// so the destination must learn the hand-over by asking the source node (QueryHandover); its phase is implicit;
/// <c>hold:setup=MS</c> makes the destination wait MS ms before it acknowledges the prepare (the source stays in setup;
/// keep it below connect-timeout + 10 s, the destination's wait for channels),
/// <c>hold:verify=MS</c> makes the destination wait MS ms, verified, before it answers DestinationVerified (the source
/// stays in verifying), <c>hold:commit=MS</c> makes the source wait MS ms before it sends CommitMigration (both
/// sides in committing), and <c>hold:resume=MS</c> makes the destination wait MS ms, once, after it decided to resume
/// the verified guest (commit received, or the source's answer or removal) before it claims it in the ownership record:
/// they widen those windows for fault drills (kill or stop a node inside them).
/// Faults in precopy fire at the start of iteration 1; faults in stop-copy right after the guest stops.
/// </summary>
public sealed record FaultInjection(string Kind, string Phase, int Channel, string? Device, double Value)
{
    public const string DropChannel = "drop-channel";
    public const string CorruptPacket = "corrupt-packet";
    public const string SlowLoad = "slow-load";
    public const string DropCommit = "drop-commit";
    public const string Hold = "hold";

    public static bool TryParse(string text, out FaultInjection fault, out string error)
    {
        fault = null!;
        error = "";
        var at = text.Split('@', 2);
        var head = at[0].Split(':', 2);
        var kind = head[0].ToLowerInvariant();
        if (kind == DropCommit)
        {
            // The commit has one phase, and the fault no argument.
            if (head.Length != 1 || at.Length != 1)
            {
                error = $"--inject '{text}': drop-commit takes no channel, device or phase";
                return false;
            }

            fault = new FaultInjection(DropCommit, "commit", 0, null, 0);
            return true;
        }

        if (kind == Hold)
        {
            var hv = head.Length == 2 ? head[1].Split('=', 2) : [];
            if (at.Length != 1 || hv.Length != 2 || hv[0] is not ("setup" or "verify" or "commit" or "resume") ||
                !double.TryParse(hv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var holdMs) || holdMs < 0 || holdMs > 600_000)
            {
                error = $"--inject '{text}': expected hold:setup=MS, hold:verify=MS, hold:commit=MS or hold:resume=MS (0..600000 ms)";
                return false;
            }

            fault = new FaultInjection(Hold, hv[0], 0, null, holdMs);
            return true;
        }

        var phase = at.Length == 2 ? at[1].ToLowerInvariant().Replace("-", "", StringComparison.Ordinal) : "precopy";
        if (phase is not ("precopy" or "stopcopy"))
        {
            error = $"--inject '{text}': phase '{at[1]}' is not precopy or stopcopy";
            return false;
        }

        switch (kind)
        {
            case DropChannel when head.Length == 2 && int.TryParse(head[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ch) && ch < 64:
                fault = new FaultInjection(DropChannel, phase, ch, null, 0);
                return true;
            case CorruptPacket when head.Length == 1:
                fault = new FaultInjection(CorruptPacket, phase, 0, null, 0);
                return true;
            case SlowLoad when head.Length == 2 && head[1].Length > 0:
                var kv = head[1].Split('=', 2);
                var ms = 50.0;
                if (kv.Length == 2 && (!double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out ms) || ms < 0))
                {
                    error = $"--inject '{text}': '{kv[1]}' is not a delay in ms per MiB";
                    return false;
                }

                fault = new FaultInjection(SlowLoad, "load", 0, kv[0], ms);
                return true;
            default:
                error = $"--inject '{text}': expected drop-channel:N@PHASE, corrupt-packet@PHASE, slow-load:DEVICE[=MS], drop-commit or hold:setup|verify|commit=MS";
                return false;
        }
    }
}
