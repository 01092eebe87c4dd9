using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Akka.Actor;
using Migration.Actors.Node;

namespace Migration.Host.Bench;

/// <summary>
/// A source node in this process and a destination node either in this process too (processes = 1) or in a
/// child process running `migration node` (processes = 2), joined in one cluster on loopback.
/// </summary>
public sealed partial class NodePair : IAsyncDisposable
{
    private readonly TextWriter _log;

    private NodePair(NodeHost source, NodeHost? inProcessDestination, Process? child, string destinationAddress, IActorRef destinationNode, TextWriter log)
    {
        Source = source;
        InProcessDestination = inProcessDestination;
        Child = child;
        DestinationAddress = destinationAddress;
        DestinationNode = destinationNode;
        _log = log;
    }

    public NodeHost Source { get; }
    public NodeHost? InProcessDestination { get; }

    /// <summary>The destination's process when it runs separately; null with one process.</summary>
    public Process? Child { get; }

    public string DestinationAddress { get; }
    public IActorRef DestinationNode { get; }

    /// <param name="destinationConfig">Settings of the destination node, as `migration.` keys (e.g. "memory-pool.enabled") and values.</param>
    public static async Task<NodePair> StartAsync(int processes, TextWriter log, CancellationToken ct, IReadOnlyDictionary<string, string>? destinationConfig = null)
    {
        destinationConfig ??= new Dictionary<string, string>();
        // The bench prints a table: the embedded nodes log warnings and errors only.
        var quiet = Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING");
        var source = NodeHost.Start("127.0.0.1", 0, [], quiet, name: "bench-src");
        try
        {
            await source.WaitUpAsync(1, TimeSpan.FromSeconds(60));
            if (processes == 1)
            {
                var extra = Akka.Configuration.ConfigurationFactory.ParseString(
                    string.Join("\n", destinationConfig.Select(kv => $"migration.{kv.Key} = \"{kv.Value}\""))).WithFallback(quiet);
                var destination = NodeHost.Start("127.0.0.1", 0, [source.Address], extra, name: "bench-dst");
                await destination.WaitUpAsync(2, TimeSpan.FromSeconds(60));
                await source.WaitUpAsync(2, TimeSpan.FromSeconds(60));
                return new NodePair(source, destination, null, destination.Address, destination.Node, log);
            }

            var child = await StartChildAsync(source, log, ct, destinationConfig);
            try
            {
                await source.WaitUpAsync(2, TimeSpan.FromSeconds(60));
                var node = await source.System.ActorSelection(child.Address + "/user/node").ResolveOne(TimeSpan.FromSeconds(20), ct);
                return new NodePair(source, null, child.Process, child.Address, node, log);
            }
            catch
            {
                await StopChildAsync(child.Process, log);
                throw;
            }
        }
        catch
        {
            await source.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Child is not null)
        {
            await StopChildAsync(Child, _log);
            Child.Dispose();
        }

        if (InProcessDestination is not null)
        {
            await InProcessDestination.DisposeAsync();
        }

        await Source.DisposeAsync();
    }

    private static async Task<(Process Process, string Address)> StartChildAsync(NodeHost source, TextWriter log, CancellationToken ct,
        IReadOnlyDictionary<string, string> config)
    {
        var dll = typeof(Program).Assembly.Location;
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h)
            ? h
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath ?? "") == "dotnet" ? Environment.ProcessPath! : "dotnet";
        var sourcePort = Akka.Cluster.Cluster.Get(source.System).SelfAddress.Port ?? throw new InvalidOperationException("source node has no port");
        var psi = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in config)
        {
            // The node reads MIGRATION_A_B__C as migration.a-b.c (NodeCommand.EnvironmentConfig).
            psi.Environment["MIGRATION_" + key.ToUpperInvariant().Replace(".", "__", StringComparison.Ordinal).Replace('-', '_')] = value;
        }

        foreach (var a in new[] { dll, "node", "--name", "bench-dst", "--port", FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", $"127.0.0.1:{sourcePort}" })
        {
            psi.ArgumentList.Add(a);
        }

        var up = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var tail = new Queue<string>();
        void Line(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (tail)
            {
                tail.Enqueue(line);
                if (tail.Count > 40)
                {
                    tail.Dequeue();
                }
            }

            var at = line.IndexOf(" up at ", StringComparison.Ordinal);
            if (line.StartsWith("node bench-dst", StringComparison.Ordinal) && at > 0)
            {
                up.TrySetResult(line[(at + " up at ".Length)..].Trim());
            }
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Exited += (_, _) => up.TrySetException(new InvalidOperationException("destination process exited before it was up"));
        if (!process.Start())
        {
            throw new InvalidOperationException($"cannot start {host} {dll} node");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var address = await up.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
            await log.WriteLineAsync($"  destination process {process.Id} up at {address}");
            return (process, address);
        }
        catch (Exception e)
        {
            await StopChildAsync(process, log);
            string text;
            lock (tail)
            {
                text = string.Join("\n    ", tail);
            }

            throw new InvalidOperationException($"destination process did not come up ({e.Message}); its last output:\n    {text}", e);
        }
    }

    /// <summary>SIGTERM (the node leaves the cluster and exits), then SIGKILL after 5 s.</summary>
    private static async Task StopChildAsync(Process process, TextWriter log)
    {
        try
        {
            if (process.HasExited)
            {
                return;
            }

            _ = Kill(process.Id, 15);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                await log.WriteLineAsync($"  destination process {process.Id} ignored SIGTERM for 5 s; killing it");
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
    }

    /// <summary>A free port outside the ephemeral range (see LoopbackPorts).</summary>
    private static int FreePort()
        => Migration.Transport.Channels.LoopbackPorts.Pick();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
