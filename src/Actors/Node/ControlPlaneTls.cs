using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;
using Migration.Actors.Settings;
using Migration.Transport.Channels;

namespace Migration.Actors.Node;

/// <summary>
/// Mutual TLS on the control plane (Akka.Remote's DotNetty transport), from the same `migration.tls` PEM files as the
/// data channels, so one configuration secures both planes. Every remoting connection, node to node and CLI to node,
/// runs TLS in which both ends present a certificate and each accepts the other only if it chains to OUR CA
/// (<see cref="ChannelTls.Trusts"/>: a custom root trust, never the OS store); host names are not checked (nodes are
/// addressed by IP, the CA is the trust anchor). Addresses then use the scheme <see cref="Scheme"/>.
/// Built once per ActorSystem; the validator runs on DotNetty's I/O threads and touches only immutable state.
/// </summary>
public static class ControlPlaneTls
{
    /// <summary>Akka's address scheme with TLS on (akka.ssl.tcp://mig@HOST:PORT).</summary>
    public const string Scheme = "akka.ssl.tcp";

    /// <summary>Plain remoting's address scheme.</summary>
    public const string PlainScheme = "akka.tcp";

    /// <summary>
    /// The setup for an ActorSystem over <paramref name="config"/>: with <paramref name="settings"/>' TLS files set, TLS
    /// on with client certificates required; without, the plain configuration. Throws FileNotFoundException or
    /// CryptographicException for a bad file, before anything starts.
    /// </summary>
    public static ActorSystemSetup Setup(Config config, MigrationSettings settings)
    {
        if (!settings.TlsEnabled)
        {
            return ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config));
        }

        var tls = ChannelTls.Load(settings.TlsCertificate, settings.TlsKey, settings.TlsCa);
        var withSsl = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = on").WithFallback(config);
        var ssl = new DotNettySslSetup(tls.Certificate, suppressValidation: false, requireMutualAuthentication: true,
            validateCertificateHostname: false, customValidator: Validator(tls, settings.TlsCa));
        return ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(withSsl), ssl);
    }

    /// <summary>"HOST:PORT" or a full Akka address -> the Akka address of the node actor system, with the plane's scheme.</summary>
    public static string Address(string seed, bool tls) =>
        seed.Contains("://", StringComparison.Ordinal) ? seed : $"{(tls ? Scheme : PlainScheme)}://{NodeHost.SystemName}@{seed}";

    private static CertificateValidationCallback Validator(ChannelTls tls, string caPath) => (certificate, _, peer, _, log) =>
    {
        if (tls.Trusts(certificate))
        {
            return true;
        }

        log.Warning("control plane: refused TLS peer {0}: {1}", peer, certificate is null
            ? "it presented no certificate (a client certificate is required)"
            : $"certificate '{certificate.Subject}' (issuer '{certificate.Issuer}') does not chain to the CA in {caPath}");
        return false;
    };
}
