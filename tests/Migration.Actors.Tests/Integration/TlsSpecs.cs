using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>Channels over TLS with both sides authenticated by a CA the nodes share.</summary>
public sealed class TlsSpecs : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("migration-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_migration_over_TLS_channels_completes_and_verifies()
    {
        var (ca, caKey) = CreateCa();
        var source = TlsConfig("src", ca, caKey);
        var destination = TlsConfig("dst", ca, caKey);
        await using var a = NodeHost.Start("127.0.0.1", 0, [], source);
        await a.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        await using var b = NodeHost.Start("127.0.0.1", 0, [a.Address], destination);
        await b.WaitUpAsync(2, TimeSpan.FromSeconds(30));

        // One channel drops at the start of precopy: it reconnects over TLS (new handshake, same token) and the migration verifies.
        var settings = TwoNodeCluster.Settings() with { Inject = [new Migration.Actors.Settings.FaultInjection("drop-channel", "precopy", 1, null, 0)] };
        var report = await MigrateAsync(a, b, "tls-guest", settings);
        Assert.Equal("completed", report.Status);
        Assert.True(report.Verified, report.Error);
        Assert.Equal(1, report.ChannelReconnects);
    }

    [Fact]
    public async Task A_node_without_a_certificate_or_with_one_of_another_CA_never_joins_a_TLS_cluster()
    {
        // migration.tls secures the cluster transport too: a plain node, or one whose certificate another CA signed,
        // fails the TLS handshake with the seed and never becomes a member (so it can never be a migration's peer).
        var (ca, caKey) = CreateCa();
        await using var a = NodeHost.Start("127.0.0.1", 0, [], TlsConfig("seed", ca, caKey));
        await a.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        var seed = a.Address.Replace("akka.ssl.tcp://", "", StringComparison.Ordinal).Replace("mig@", "", StringComparison.Ordinal);
        Assert.StartsWith("akka.ssl.tcp://", a.Address, StringComparison.Ordinal);

        await using var plain = NodeHost.Start("127.0.0.1", 0, [seed], Base);
        var (otherCa, otherKey) = CreateCa("other");
        await using var stranger = NodeHost.Start("127.0.0.1", 0, [seed], TlsConfig("stranger", otherCa, otherKey, trustCa: "ca.pem"));
        await Assert.ThrowsAsync<TimeoutException>(() => plain.WaitUpAsync(2, TimeSpan.FromSeconds(8)));
        await Assert.ThrowsAsync<TimeoutException>(() => stranger.WaitUpAsync(2, TimeSpan.FromSeconds(4)));
        Assert.Single(Akka.Cluster.Cluster.Get(a.System).State.Members);
    }

    [Fact]
    public void A_node_with_a_missing_certificate_file_does_not_start()
    {
        var bad = ConfigurationFactory.ParseString($"migration.tls {{ certificate = \"{_dir}/nope.pem\", key = \"{_dir}/nope.key\", ca = \"{_dir}/ca.pem\" }}");
        var e = Assert.Throws<FileNotFoundException>(() => NodeHost.Start("127.0.0.1", 0, [], bad.WithFallback(Base)));
        Assert.Contains("nope.pem", e.Message);
    }

    private static Config Base => ConfigurationFactory.ParseString("akka.loglevel = ERROR\nakka.actor.serialize-messages = on\nmigration.prefault-destination = off");

    private static async Task<MigrationReport> MigrateAsync(NodeHost from, NodeHost to, string id, Migration.Actors.Settings.MigrationSettings? settings = null)
    {
        var spec = new GuestSpec(id, 16L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 2 << 20, 1 << 20)], 4L << 20);
        Assert.IsType<GuestCreated>(await from.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(30)));
        var watcher = new ReportWatcher(from.System);
        Assert.IsType<MigrationStarted>(await from.Node.Ask<object>(new StartMigration(id, to.Address, settings ?? TwoNodeCluster.Settings(), watcher.Actor), TimeSpan.FromSeconds(10)));
        return await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(60));
    }

    private (X509Certificate2 Ca, ECDsa Key) CreateCa(string file = "ca")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=migration test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(Path.Combine(_dir, file + ".pem"), ca.ExportCertificatePem());
        return (ca, key);
    }

    /// <summary>A certificate for NAME signed by <paramref name="ca"/>; the node trusts the CA in file <paramref name="trustCa"/>.</summary>
    private Config TlsConfig(string name, X509Certificate2 ca, ECDsa caKey, string trustCa = "ca.pem")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client authentication
        var serial = RandomNumberGenerator.GetBytes(8);
        using var cert = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), serial);
        var certPath = Path.Combine(_dir, name + ".pem");
        var keyPath = Path.Combine(_dir, name + ".key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return ConfigurationFactory.ParseString($$"""
            migration.tls {
              certificate = "{{certPath}}"
              key = "{{keyPath}}"
              ca = "{{Path.Combine(_dir, trustCa)}}"
            }
            """).WithFallback(Base);
    }
}
