using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Guest;

namespace Migration.Actors.Node;

/// <summary>
/// The destination's check of a PrepareIncoming, peer input from another node: the guest spec
/// (<see cref="PeerGuestSpec"/>) and the migration parameters must be within range, and the effective settings are the
/// node's own plus the parameters, with the device buffer budget capped at <see cref="BudgetCap"/>. Pure; called on the
/// node actor's thread. Memory capacity and duplicate ids are checked by the node itself.
/// </summary>
public static class IncomingAdmission
{
    /// <summary>The node's cap on one migration's device buffer budget: max-device-buffer-budget, or 1/8 of the node's memory capacity when 0.</summary>
    public static long BudgetCap(MigrationSettings node, long memoryCapacity) =>
        node.MaxDeviceBufferBudget > 0 ? node.MaxDeviceBufferBudget : Math.Max(4096, memoryCapacity / 8);

    /// <summary>True with the effective settings, or false with a refusal that says what arrived and what was expected.</summary>
    public static bool TryAdmit(PrepareIncoming p, MigrationSettings node, long memoryCapacity, out MigrationSettings effective, out string refusal)
    {
        effective = node;
        if (p.Spec is null || p.Parameters is null || p.Source is null)
        {
            refusal = $"migration {p.MigrationId}: prepare without {(p.Spec is null ? "guest spec" : p.Parameters is null ? "parameters" : "source")}";
            return false;
        }

        if (PeerGuestSpec.Problem(p.Spec) is { } bad)
        {
            refusal = $"migration {p.MigrationId}: invalid guest spec from the source: {bad}";
            return false;
        }

        if (p.Parameters.Problem(p.Spec.Devices.Select(d => d.Id).ToArray()) is { } wrong)
        {
            refusal = $"migration {p.MigrationId}: invalid migration parameter from the source: {wrong}";
            return false;
        }

        var settings = p.Parameters.ForDestination(node, BudgetCap(node, memoryCapacity), out var why);
        if (settings is null)
        {
            refusal = $"migration {p.MigrationId}: {why}";
            return false;
        }

        effective = settings;
        refusal = "";
        return true;
    }
}

/// <summary>
/// A guest spec from a peer node checked as strictly as wire input: <see cref="GuestSpec.Validate"/> plus the limits a
/// spec typed by an operator never reaches (lengths, counts, enum values, finite numbers, sizes a node can hold).
/// </summary>
public static class PeerGuestSpec
{
    public const int MaxDevices = 64;
    public const long MaxDeviceStateBytes = 16L << 30;
    public const long MaxRamBytes = 1L << 40;

    /// <summary>Null when acceptable, else the first problem.</summary>
    public static string? Problem(GuestSpec spec)
    {
        if (spec.Id is null || spec.Id.Length > 64 || spec.Id.Any(char.IsControl))
        {
            return $"guest id of {spec.Id?.Length ?? 0} characters (or with control characters); expected 1..64 printable characters";
        }

        if (spec.Devices is null || spec.Devices.Count > MaxDevices || spec.Devices.Any(d => d is null))
        {
            return $"guest {spec.Id}: {spec.Devices?.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no"} devices list; expected 0..{MaxDevices} devices";
        }

        if (spec.RamBytes > MaxRamBytes)
        {
            return $"guest {spec.Id}: RAM {spec.RamBytes} bytes; expected at most {MaxRamBytes}";
        }

        if (!Enum.IsDefined(spec.Fill))
        {
            return $"guest {spec.Id}: RAM fill pattern {(int)spec.Fill}; expected one of {string.Join(", ", Enum.GetNames<Migration.Devices.Workload.RamFillPattern>())}";
        }

        foreach (var d in spec.Devices)
        {
            if (d.Instance < 0 || d.StateBytes > MaxDeviceStateBytes || !double.IsFinite(d.LoadDelayMsPerMiB) || d.LoadDelayMsPerMiB > MigrationParameters.MaxLoadDelayMsPerMiB)
            {
                return $"guest {spec.Id}: device {d.Id}: instance {d.Instance}, state {d.StateBytes} bytes, load delay {d.LoadDelayMsPerMiB} ms/MiB; " +
                       $"expected instance >= 0, state <= {MaxDeviceStateBytes} bytes, load delay 0..{MigrationParameters.MaxLoadDelayMsPerMiB}";
            }
        }

        try
        {
            spec.Validate();
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }

        return null;
    }
}
