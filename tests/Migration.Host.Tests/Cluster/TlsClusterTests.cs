using Xunit;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Mutual TLS on the control plane with node processes: migration.tls secures the cluster transport as well as the
/// data channels. Nodes and a CLI configured with certificates of the cluster's CA work end to end; a CLI without a
/// certificate, a CLI and a node with certificates of another CA are refused with a clear message and a non-zero exit.
/// </summary>
public sealed class TlsClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Two_TLS_nodes_and_a_TLS_CLI_migrate_a_guest_and_strangers_are_refused()
    {
        using var ca = new TestCertificates();
        using var otherCa = new TestCertificates("another CA");
        await using var nodes = new NodeProcesses();
        var (pa, pb) = (NodeProcesses.FreePort(), NodeProcesses.FreePort());
        await nodes.StartNodeAsync("A", pa, null, $"--config {ca.Issue("node-a")}");
        await nodes.StartNodeAsync("B", pb, pa, $"--config {ca.Issue("node-b")}");
        var cli = $"--seed 127.0.0.1:{pa} --config {ca.Issue("operator")}";

        var listed = await NodeProcesses.WaitForUpAsync(cli, 2);
        Assert.Contains("akka.ssl.tcp://mig@127.0.0.1", listed);

        var create = await UnlessUnreachableAsync($"vm create {cli} --id tls1 --on A --ram 32MiB --device vfio:gpu0:4MiB --dirty-rate 4MiB", Timeout);
        Assert.True(create.Code == 0, create.Err + create.Out);
        var json = Path.Combine(ca.Directory, "report.json");
        var migrate = await UnlessUnreachableAsync($"migrate {cli} --vm tls1 --to B --json {json}", Timeout);
        Assert.True(migrate.Code == 0, migrate.Err + migrate.Out);
        var report = await File.ReadAllTextAsync(json);
        Assert.Contains("\"status\": \"completed\"", report);
        Assert.Contains("\"verified\": true", report);

        // Read-only commands are retried while a loaded machine answers late (each CLI run opens new TLS associations).
        var status = await UntilAsync($"status {cli}", r => r.Code == 0 && r.Out.Contains("tls1", StringComparison.Ordinal));
        Assert.Contains("completed", status.Out);
        var cancel = await UnlessUnreachableAsync($"cancel {cli} 00000000", Timeout);
        Assert.True(cancel.Code == 3, cancel.Err); // reached the cluster over TLS: the migration id is unknown
        var list = await UntilAsync($"vm list {cli}", r => r.Code == 0 && r.Out.Contains("tls1", StringComparison.Ordinal));
        Assert.Matches(@"tls1\s*│\s*B\s*│\s*running", list.Out);

        // A CLI without a certificate gets no answer (its plain connection fails the TLS handshake) and says why it may be.
        var plain = await NodeProcesses.CliAsync($"nodes --seed 127.0.0.1:{pa}", Timeout);
        Assert.Equal(4, plain.Code);
        Assert.Contains("unreachable", plain.Err);
        Assert.Contains("--config", plain.Err);

        // A CLI whose certificate comes from another CA is refused the same way.
        var stranger = await NodeProcesses.CliAsync($"nodes --seed 127.0.0.1:{pa} --config {otherCa.Issue("intruder", trustedCa: ca.CaPath)}", Timeout);
        Assert.Equal(4, stranger.Code);
        Assert.Contains("signed by the cluster's CA", stranger.Err);

        // A node whose certificate comes from another CA (even trusting the cluster's CA) never becomes a member.
        var pc = NodeProcesses.FreePort();
        var intruder = await NodeProcesses.CliAsync(
            $"node --name C --port {pc} --seed 127.0.0.1:{pa} --join-timeout 15 --config {otherCa.Issue("node-c", trustedCa: ca.CaPath)}", Timeout);
        Assert.Equal(1, intruder.Code);
        Assert.DoesNotContain("up at", intruder.Out);
        Assert.Contains("CA", intruder.Err);
        var after = await UnlessUnreachableAsync($"nodes {cli}", Timeout);
        Assert.Equal(0, after.Code);
        Assert.DoesNotContain($"127.0.0.1:{pc}", after.Out);
    }

    [Fact]
    public async Task A_CLI_with_a_missing_config_or_certificate_file_exits_2_naming_the_file()
    {
        using var ca = new TestCertificates();
        var missing = Path.Combine(ca.Directory, "nope.conf");
        var noConfig = await NodeProcesses.CliAsync($"nodes --seed 127.0.0.1:{NodeProcesses.FreePort()} --config {missing}", Timeout);
        Assert.Equal(2, noConfig.Code);
        Assert.Contains("nope.conf", noConfig.Err);

        var conf = ca.Issue("operator");
        File.Delete(Path.Combine(ca.Directory, "operator.key"));
        var noKey = await NodeProcesses.CliAsync($"vm list --seed 127.0.0.1:{NodeProcesses.FreePort()} --config {conf}", Timeout);
        Assert.Equal(2, noKey.Code);
        Assert.Contains("operator.key", noKey.Err);
    }

    /// <summary>
    /// Runs a CLI command again while it exits 4 (no node answered within the CLI's ask timeout: nothing was done),
    /// which a machine loaded by parallel tests can cause for a fresh process's first TLS association; at most 5 runs.
    /// </summary>
    private static async Task<(int Code, string Out, string Err)> UnlessUnreachableAsync(string arguments, TimeSpan timeout)
    {
        for (var attempt = 1; ; attempt++)
        {
            var r = await NodeProcesses.CliAsync(arguments, timeout);
            if (r.Code != 4 || attempt == 5)
            {
                return r;
            }

            await Task.Delay(1000);
        }
    }

    /// <summary>Runs a read-only CLI command until <paramref name="done"/> holds (at most 60 s); returns the last run.</summary>
    private static async Task<(int Code, string Out, string Err)> UntilAsync(string arguments, Func<(int Code, string Out, string Err), bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var r = await NodeProcesses.CliAsync(arguments, TimeSpan.FromSeconds(30));
            if (done(r) || DateTime.UtcNow > deadline)
            {
                Assert.True(done(r), $"`{arguments}`: exit {r.Code}: {r.Err}{r.Out}");
                return r;
            }

            await Task.Delay(500);
        }
    }
}
