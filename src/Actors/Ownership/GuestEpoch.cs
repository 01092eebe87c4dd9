using System.Globalization;

namespace Migration.Actors.Ownership;

/// <summary>
/// One guest's entry in the majority-confirmed ownership record (<see cref="OwnershipRecord"/>): the node allowed to
/// run it (<paramref name="Owner"/>, a cluster address such as akka.tcp://mig@127.0.0.1:4053) and the epoch of that
/// grant. Epochs only grow: a creation is epoch 1, a destination's resume after a migration is epoch + 1, a source that
/// takes a stopped guest back after a failed hand-over writes at least epoch + 2 (so it wins over a destination's claim
/// of epoch + 1 that never reached a majority). <see cref="None"/> (epoch 0) stands for "no entry".
/// Stored as the text "EPOCH OWNER" in an LWWDictionary whose clock is the epoch (higher epoch wins a merge).
/// </summary>
public readonly record struct GuestEpoch(long Epoch, string Owner)
{
    public static readonly GuestEpoch None = new(0, "");

    public bool IsNone => Epoch == 0;

    public string Format() => $"{Epoch.ToString(CultureInfo.InvariantCulture)} {Owner}";

    /// <summary>Parses a replicated value; a value another node wrote is input like any other and is checked.</summary>
    public static bool TryParse(string? text, out GuestEpoch epoch, out string error)
    {
        epoch = None;
        error = "";
        var parts = text?.Split(' ', 2) ?? [];
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var e) || e < 1 ||
            !parts[1].StartsWith("akka", StringComparison.Ordinal) || parts[1].Length > 512)
        {
            error = $"ownership record value '{text}' is not 'EPOCH OWNER' (epoch >= 1, owner an Akka address)";
            return false;
        }

        epoch = new GuestEpoch(e, parts[1]);
        return true;
    }

    public override string ToString() => IsNone ? "no record" : $"epoch {Epoch} on {Owner}";
}
