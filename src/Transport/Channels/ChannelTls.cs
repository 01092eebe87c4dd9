using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Migration.Transport.Channels;

/// <summary>
/// TLS for the data channels with both sides authenticated: each node presents its certificate (PEM files) and
/// accepts a peer only if the peer's certificate chains to the configured CA. Host names are not checked (nodes
/// are addressed by IP here); the CA is the trust anchor. The migration token check runs inside TLS as before.
/// Immutable after Load; shared by every channel of the node.
/// </summary>
public sealed class ChannelTls
{
    private readonly X509Certificate2 _certificate;
    private readonly X509Certificate2Collection _trusted;

    private ChannelTls(X509Certificate2 certificate, X509Certificate2Collection trusted)
    {
        _certificate = certificate;
        _trusted = trusted;
    }

    /// <summary>This node's certificate with its private key (also the control plane's, see NodeHost).</summary>
    public X509Certificate2 Certificate => _certificate;

    /// <summary>Loads this node's certificate and key and the CA certificate(s) from PEM files.</summary>
    public static ChannelTls Load(string certificatePem, string keyPem, string caPem)
    {
        foreach (var (path, what) in new[] { (certificatePem, "certificate"), (keyPem, "key"), (caPem, "CA") })
        {
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"TLS {what} file '{path}' not found", path);
            }
        }

        var certificate = X509Certificate2.CreateFromPemFile(certificatePem, keyPem);
        var trusted = new X509Certificate2Collection();
        trusted.ImportFromPemFile(caPem);
        return new ChannelTls(certificate, trusted);
    }

    /// <summary>Source side: TLS client over a connected socket.</summary>
    public async Task<IChannelIo> ClientAsync(Socket socket, int channelIndex, CancellationToken ct)
    {
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false, Validate);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "migration-node",
                ClientCertificates = [_certificate],
                EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, ct).ConfigureAwait(false);
            return new StreamChannelIo(ssl, socket);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new ChannelSetupException(channelIndex, $"channel {channelIndex}: TLS handshake failed: {e.Message}");
        }
    }

    /// <summary>Destination side: TLS server over an accepted socket; the client must present a trusted certificate.</summary>
    public async Task<IChannelIo> ServerAsync(Socket socket, CancellationToken ct)
    {
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false, Validate);
        try
        {
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = _certificate,
                ClientCertificateRequired = true,
                EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, ct).ConfigureAwait(false);
            return new StreamChannelIo(ssl, socket);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The peer's certificate must chain to one of the configured CA certificates.</summary>
    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) => Trusts(certificate);

    /// <summary>
    /// True when <paramref name="certificate"/> chains to one of the configured CA certificates (only those: the OS
    /// store is not consulted, so a certificate from any other CA is refused). Thread-safe; used by both planes.
    /// </summary>
    public bool Trusts(X509Certificate? certificate)
    {
        if (certificate is null)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_trusted);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }
}
