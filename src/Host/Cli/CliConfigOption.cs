using System.CommandLine;

namespace Migration.Host.Cli;

/// <summary>
/// `--config FILE` on every cluster CLI command (the HOCON keys of `node`, notably migration.tls for a TLS cluster),
/// added to each command that takes --seed so that the commands themselves stay unchanged.
/// </summary>
public static class CliConfigOption
{
    public const string Name = "--config";

    /// <summary>Adds the option to every command (and subcommand) that has a --seed option; returns the commands.</summary>
    public static IEnumerable<Command> AddTo(IEnumerable<Command> commands)
    {
        foreach (var command in commands)
        {
            Add(command);
            yield return command;
        }
    }

    /// <summary>The --config value of the invoked command, or null.</summary>
    public static string? Value(ParseResult r) =>
        r.CommandResult.Command.Options.Any(o => o.Name == Name) ? r.GetValue<string?>(Name) : null;

    private static void Add(Command command)
    {
        if (command.Options.Any(o => o.Name == "--seed"))
        {
            command.Options.Add(new Option<string?>(Name) { Description = "A HOCON file with the node keys the CLI uses (migration.tls { certificate, key, ca } for a TLS cluster); MIGRATION_* variables apply too" });
        }

        foreach (var sub in command.Subcommands)
        {
            Add(sub);
        }
    }
}
