using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Runs `migration` as separate OS processes (nodes and CLI invocations) for multi-process tests. Every process
/// is bounded in time and killed on dispose; only 127.0.0.1 is used.
/// </summary>
public sealed class NodeProcesses : IAsyncDisposable
{
    private readonly List<Process> _nodes = [];
    private readonly Dictionary<int, StringBuilder> _logs = new();

    /// <summary>The built migration.dll next to this test assembly (the Host project is referenced).</summary>
    public static string MigrationDll { get; } = Path.Combine(AppContext.BaseDirectory, "migration.dll");

    private static string DotNet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";

    /// <summary>A free port outside the ephemeral range (see LoopbackPorts).</summary>
    /// <summary>migration.cli.request-timeout of every CLI run here.</summary>
    public const string CliRequestTimeout = "20s";

    public static int FreePort()
        => Migration.Transport.Channels.LoopbackPorts.Pick();

    /// <summary>Starts a node process and waits for its "up at" line; <paramref name="extraArgs"/> are appended (e.g. --config FILE);
    /// <paramref name="environment"/>: extra variables (MIGRATION_* set node settings, see NodeCommand).</summary>
    public async Task<Process> StartNodeAsync(string name, int port, int? seedPort, string extraArgs = "", IReadOnlyDictionary<string, string>? environment = null)
    {
        var args = $"\"{MigrationDll}\" node --name {name} --port {port}" + (seedPort is { } s ? $" --seed 127.0.0.1:{s}" : "") + " " + extraArgs;
        var p = Start(args, environment);
        _nodes.Add(p);
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new StringBuilder();
        lock (_logs)
        {
            _logs[p.Id] = log;
        }

        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (log)
            {
                log.AppendLine(e.Data);
            }

            if (e.Data.Contains($"node {name} up at", StringComparison.Ordinal))
            {
                up.TrySetResult();
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            lock (log)
            {
                log.AppendLine(e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var finished = await Task.WhenAny(up.Task, p.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        if (finished != up.Task)
        {
            lock (log)
            {
                throw new InvalidOperationException($"node {name} did not come up: {log}");
            }
        }

        return p;
    }

    /// <summary>Everything the node process printed so far (stdout and stderr).</summary>
    public string Output(Process node)
    {
        StringBuilder log;
        lock (_logs)
        {
            log = _logs[node.Id];
        }

        lock (log)
        {
            return log.ToString();
        }
    }

    /// <summary>Waits until the node process printed a line containing <paramref name="text"/>; returns its output.</summary>
    public async Task<string> WaitForOutputAsync(Process node, string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var output = Output(node);
            if (output.Contains(text, StringComparison.Ordinal))
            {
                return output;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"node process {node.Id} did not print \"{text}\" within {timeout.TotalSeconds:0} s: {Output(node)}");
    }

    /// <summary>Sends a signal to a node process from outside (e.g. "STOP", "CONT", "KILL"), as an operator's kill would.</summary>
    public static async Task SignalAsync(Process node, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {node.Id}") { UseShellExecute = false })
                         ?? throw new InvalidOperationException("could not run kill");
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {node.Id} exited {kill.ExitCode}");
        }
    }

    /// <summary>
    /// Polls `migration nodes <paramref name="cliArguments"/>` (the --seed and, with TLS, --config of the cluster) until
    /// at least <paramref name="count"/> members are Up, for at most 90 s; returns that listing, else throws naming the last one.
    /// </summary>
    public static async Task<string> WaitForUpAsync(string cliArguments, int count)
    {
        // 90 s, and a CLI run that times out is one more try: on a loaded machine a `nodes` run may take that long.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            string last;
            try
            {
                var r = await CliAsync($"nodes {cliArguments}", TimeSpan.FromSeconds(30));
                if (r.Code == 0 && r.Out.Split('\n').Count(l => l.Contains(" Up ", StringComparison.Ordinal)) >= count)
                {
                    return r.Out;
                }

                last = r.Out + r.Err;
            }
            catch (TimeoutException e)
            {
                last = e.Message;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"cluster of {count} not up within 90 s: {last}");
            }

            await Task.Delay(500);
        }
    }

    /// <summary>Runs one CLI command to completion (at most <paramref name="timeout"/>); returns exit code and output.</summary>
    public static async Task<(int Code, string Out, string Err)> CliAsync(string arguments, TimeSpan timeout)
    {
        using var p = Start($"\"{MigrationDll}\" {arguments}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"`migration {arguments}` did not finish within {timeout.TotalSeconds:0} s");
        }

        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts a CLI command without waiting for it (killed on dispose like the nodes); its output is discarded.</summary>
    public Process StartCli(string arguments)
    {
        var p = Start($"\"{MigrationDll}\" {arguments}");
        _nodes.Add(p);
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Sends a POSIX signal (STOP, CONT) to a process started here, as an operator's `kill -SIG PID` would.</summary>
    public static void Signal(Process p, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {p.Id}") { UseShellExecute = false })
                         ?? throw new InvalidOperationException("could not run kill");
        kill.WaitForExit(10_000);
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {p.Id} exited {kill.ExitCode}");
        }
    }

    private static Process Start(string arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(DotNet, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["COLUMNS"] = "200";
        // A loaded CI host answers late; the CLI's default 10 s wait made commands exit 4 "unreachable" (nodes ignore it).
        info.Environment["MIGRATION_CLI__REQUEST_TIMEOUT"] = CliRequestTimeout;
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        return Process.Start(info) ?? throw new InvalidOperationException("could not start " + arguments);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _nodes)
        {
            try
            {
                if (!p.HasExited)
                {
                    // SIGKILL also ends a process stopped by kill -STOP.
                    p.Kill(entireProcessTree: true);
                    await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
            }
            catch (Exception)
            {
                // best effort
            }

            p.Dispose();
        }
    }
}
