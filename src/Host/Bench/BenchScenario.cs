using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Devices.Workload;

namespace Migration.Host.Bench;

/// <summary>
/// One named benchmark guest: RAM size and content, the workload's dirty rate and the devices. Sizes are the
/// full-scale ones; <see cref="ToSpec"/> can shrink them (tests use a small scale).
/// </summary>
public sealed record BenchScenario(string Name, string Description, long RamBytes, RamFillPattern Fill, long DirtyRateBytesPerSecond,
    IReadOnlyList<DeviceSpec> Devices)
{
    private const long MiB = 1L << 20;
    private const long GiB = 1L << 30;

    /// <summary>Every scenario, in the order `bench` runs them by default.</summary>
    public static IReadOnlyList<BenchScenario> All { get; } =
    [
        new("random-2g", "idle guest, 2 GiB of random (incompressible) RAM", 2 * GiB, RamFillPattern.Random, 0, []),
        new("zero-2g", "idle guest, 2 GiB of all-zero RAM", 2 * GiB, RamFillPattern.Zero, 0, []),
        new("random-8g", "idle guest, 8 GiB of random RAM (does the cost grow linearly?); needs ~20 GiB free", 8 * GiB, RamFillPattern.Random, 0, []),
        new("zero90-2g", "idle guest, 2 GiB, 90 % zero pages, the rest random", 2 * GiB, RamFillPattern.Zero90, 0, []),
        new("dirty-1g", "1 GiB of random RAM, workload dirtying 256 MiB/s", GiB, RamFillPattern.Random, 256 * MiB, []),
        new("devices-precopy", "idle 1 GiB random RAM + two 256 MiB VFIO-style devices, 7/8 of their state sent in precopy",
            GiB, RamFillPattern.Random, 0,
            [Vfio("gpu0", 256 * MiB, 224 * MiB, 21), Vfio("gpu1", 256 * MiB, 224 * MiB, 22)]),
        new("devices-switchover", "same guest, all device state in STOP_COPY (switchover only, as QEMU 10)",
            GiB, RamFillPattern.Random, 0,
            [Vfio("gpu0", 256 * MiB, 0, 21), Vfio("gpu1", 256 * MiB, 0, 22)]),
    ];

    /// <summary>Scenarios that run only when named (too large for a default run on a small machine).</summary>
    public static IReadOnlySet<string> ExplicitOnly { get; } = new HashSet<string>(StringComparer.Ordinal) { "random-8g" };

    /// <summary>What `bench` runs without --scenario: every scenario except <see cref="ExplicitOnly"/>.</summary>
    public static IReadOnlyList<BenchScenario> Default { get; } = All.Where(s => !ExplicitOnly.Contains(s.Name)).ToArray();

    /// <summary>Scenario names accepted by --scenario ("devices" selects both device rows).</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(s => s.Name), "devices"];

    /// <summary>Scenarios named by <paramref name="names"/> (<see cref="Default"/> when empty), in the catalogue's order, no duplicates.</summary>
    public static bool TrySelect(IReadOnlyList<string> names, out IReadOnlyList<BenchScenario> selected, out string error)
    {
        error = "";
        if (names.Count == 0)
        {
            selected = Default;
            return true;
        }

        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in names)
        {
            var name = raw.Trim().ToLowerInvariant();
            if (name == "devices")
            {
                wanted.Add("devices-precopy");
                wanted.Add("devices-switchover");
            }
            else if (All.Any(s => s.Name == name))
            {
                wanted.Add(name);
            }
            else
            {
                selected = [];
                error = $"--scenario '{raw}': unknown scenario; expected one of {string.Join(", ", Names)}";
                return false;
            }
        }

        selected = All.Where(s => wanted.Contains(s.Name)).ToArray();
        return true;
    }

    /// <summary>Device state held by the devices (simulated in process memory on both sides).</summary>
    public long DeviceStateBytes(double scale) => Devices.Sum(d => Scale(d.StateBytes, scale));

    /// <summary>The guest to create, with every size multiplied by <paramref name="scale"/> (rounded to whole MiB, at least 4 MiB).</summary>
    public GuestSpec ToSpec(string id, double scale) => new(
        id,
        Scale(RamBytes, scale),
        Devices.Select(d => d with
        {
            StateBytes = Scale(d.StateBytes, scale),
            PrecopyBytes = d.PrecopyBytes == 0 ? 0 : Scale(d.StateBytes, scale) / 8 * 7,
        }).ToArray(),
        (long)(DirtyRateBytesPerSecond * scale),
        Fill,
        Seed: 5);

    public static long Scale(long bytes, double scale) =>
        scale == 1.0 ? bytes : Math.Max(4 * MiB, (long)(bytes * scale) / MiB * MiB);

    private static DeviceSpec Vfio(string id, long state, long precopy, int seed) =>
        new(id, DeviceKind.Vfio, 0, state, precopy, seed);
}
