using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// A throw-away CA and certificates it signs, made in-process and written as PEM files (plus a HOCON file with the
/// migration.tls keys) to a temp directory that is deleted on dispose. Each instance is one CA: two instances are
/// two CAs that do not trust each other.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly ECDsa _caKey;

    public TestCertificates(string caName = "migration test CA")
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("migration-ca-").FullName;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={caName}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        CaPath = Path.Combine(Directory, "ca.pem");
        File.WriteAllText(CaPath, _ca.ExportCertificatePem());
    }

    public string Directory { get; }

    public string CaPath { get; }

    /// <summary>
    /// Issues a certificate for <paramref name="name"/> (server and client authentication) and writes NAME.pem,
    /// NAME.key and NAME.conf (migration.tls pointing at them; <paramref name="trustedCa"/> overrides the CA file);
    /// returns the .conf path, for --config.
    /// </summary>
    public string Issue(string name, string? trustedCa = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var cert = request.Create(_ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_caKey),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));
        var certPath = Path.Combine(Directory, name + ".pem");
        var keyPath = Path.Combine(Directory, name + ".key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        var conf = Path.Combine(Directory, name + ".conf");
        File.WriteAllText(conf, $$"""
            migration.tls {
              certificate = "{{certPath}}"
              key = "{{keyPath}}"
              ca = "{{trustedCa ?? CaPath}}"
            }
            """);
        return conf;
    }

    public void Dispose()
    {
        _caKey.Dispose();
        _ca.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
