using Akka.Configuration;

namespace Migration.Host;

/// <summary>
/// The configuration sources the `node` command and the cluster CLI share, in precedence order: MIGRATION_*
/// environment variables (MIGRATION_CHANNELS=8 sets migration.channels; a double underscore nests:
/// MIGRATION_TLS__CA=/etc/ca.pem sets migration.tls.ca), then a --config HOCON file. The caller puts its command-line
/// overrides before and the reference HOCON after.
/// </summary>
public static class HostConfig
{
    /// <summary>Environment over the file (none when <paramref name="file"/> is null); throws FileNotFoundException for a missing file.</summary>
    public static Config Load(string? file)
    {
        var config = EnvironmentConfig();
        if (file is null)
        {
            return config;
        }

        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"config file {file} not found", file);
        }

        return config.WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(file)));
    }

    /// <summary>MIGRATION_FOO_BAR=value -> migration.foo-bar = value.</summary>
    public static Config EnvironmentConfig()
    {
        var lines = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (key.StartsWith("MIGRATION_", StringComparison.Ordinal) && e.Value is string value)
            {
                var path = "migration." + key["MIGRATION_".Length..].ToLowerInvariant().Replace("__", ".").Replace('_', '-');
                lines.Add($"{path} = \"{value.Replace("\"", "\\\"")}\"");
            }
        }

        return ConfigurationFactory.ParseString(string.Join('\n', lines));
    }
}
