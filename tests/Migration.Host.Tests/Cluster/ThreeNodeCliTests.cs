using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Three node processes on loopback, scripted only through the CLI (separate processes too): a guest created on
/// A migrates A -> B -> C, verifying each time, and `vm list` then shows C as its owner.
/// </summary>
public sealed class ThreeNodeCliTests
{
    [Fact]
    public async Task A_guest_migrates_A_to_B_to_C_through_the_CLI_and_vm_list_shows_C_as_owner()
    {
        await using var nodes = new NodeProcesses();
        var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null);
        await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa), nodes.StartNodeAsync("C", pc, pa));
        var seed = $"--seed 127.0.0.1:{pa}";
        var timeout = TimeSpan.FromSeconds(120);

        var listed = await NodeProcesses.WaitForUpAsync(seed, 3);
        Assert.Contains("A", listed);

        var create = await NodeProcesses.CliAsync($"vm create {seed} --id web1 --on A --ram 64MiB --device vfio:gpu0:16MiB --device vmstate:net0 --dirty-rate 8MiB", timeout);
        Assert.True(create.Code == 0, create.Err + create.Out);

        var json = Path.Combine(Path.GetTempPath(), $"mig-{Guid.NewGuid():N}.json");
        var toB = await NodeProcesses.CliAsync($"migrate {seed} --vm web1 --to B --json {json}", timeout);
        Assert.True(toB.Code == 0, toB.Err + toB.Out);
        var report = await File.ReadAllTextAsync(json);
        Assert.Contains("\"status\": \"completed\"", report);
        Assert.Contains("\"verified\": true", report);

        // B -> C loses a channel's connection at the start of precopy: it reconnects, and the migration still verifies.
        var toC = await NodeProcesses.CliAsync($"migrate --seed 127.0.0.1:{pb} --vm web1 --to C --inject drop-channel:1@precopy --json {json}", timeout);
        Assert.True(toC.Code == 0, toC.Err + toC.Out);
        report = await File.ReadAllTextAsync(json);
        Assert.Contains("\"status\": \"completed\"", report);
        Assert.Contains("\"verified\": true", report);
        Assert.Contains("\"channelReconnects\": 1", report);

        var list = await NodeProcesses.CliAsync($"vm list {seed}", timeout);
        Assert.Equal(0, list.Code);
        var row = list.Out.Split('\n').Single(l => l.Contains("web1", StringComparison.Ordinal));
        Assert.Matches(@"web1\s*│\s*C\s*│\s*running", row);

        // Clear one-line errors with distinct exit codes.
        var unknownGuest = await NodeProcesses.CliAsync($"migrate {seed} --vm nope --to B", timeout);
        Assert.Equal(3, unknownGuest.Code);
        Assert.Contains("unknown guest 'nope'", unknownGuest.Err);
        var unknownNode = await NodeProcesses.CliAsync($"migrate {seed} --vm web1 --to Z", timeout);
        Assert.Equal(3, unknownNode.Code);
        Assert.Contains("unknown node 'Z'", unknownNode.Err);
        var badSize = await NodeProcesses.CliAsync($"vm create {seed} --id x --on A --ram lots", timeout);
        Assert.Equal(2, badSize.Code);
        Assert.Contains("--ram", badSize.Err);
        File.Delete(json);
    }

    [Fact]
    public async Task A_seed_that_does_not_answer_is_reported_as_unreachable()
    {
        var port = NodeProcesses.FreePort();
        var r = await NodeProcesses.CliAsync($"nodes --seed 127.0.0.1:{port}", TimeSpan.FromSeconds(60));
        Assert.Equal(4, r.Code);
        Assert.Contains("unreachable", r.Err);
        Assert.Contains("no answer within 20 s", r.Err); // migration.cli.request-timeout from the environment
        Assert.Single(r.Err.Trim().Split('\n'));
    }
}
