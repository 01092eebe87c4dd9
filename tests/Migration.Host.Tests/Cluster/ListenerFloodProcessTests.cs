using System.Net;
using System.Net.Sockets;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Host.Tests.Cluster;

/// <summary>
/// Issue 11, with real node processes: connections that never authenticate cannot keep a migration's channels out of
/// the destination's data-channel listener. Three nodes (A seed, B, C: keep-majority downing needs three); 200 idle
/// connections are held on B's listener port (a connection the node closes, evicted or timed out, is reopened after
/// a pause, bounded in count) and a storm of 2000 connect-and-close runs over 20 s; a migration A -> B started through
/// the CLI while both run completes and verifies. Raw sockets on 127.0.0.1 only; every socket is closed at the end.
/// </summary>
public sealed class ListenerFloodProcessTests(ITestOutputHelper output)
{
    private const int IdleConnections = 200;
    private const int MaxIdleReopens = 20_000;
    private const int StormConnections = 2000;
    private static readonly TimeSpan StormDuration = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan ReopenPause = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_migration_completes_while_idle_connections_fill_the_listener_and_a_connect_storm_runs()
    {
        var dir = Directory.CreateTempSubdirectory("migration-flood-").FullName;
        try
        {
            await using var nodes = new NodeProcesses();
            var (pa, pb, pc) = (NodeProcesses.FreePort(), NodeProcesses.FreePort(), NodeProcesses.FreePort());
            var listenerPort = NodeProcesses.FreePort();
            await nodes.StartNodeAsync("A", pa, null);
            await Task.WhenAll(nodes.StartNodeAsync("B", pb, pa, $"--listener-port {listenerPort}"), nodes.StartNodeAsync("C", pc, pa));
            var seed = $"--seed 127.0.0.1:{pa}";
            await NodeProcesses.WaitForUpAsync(seed, 3);
            var create = await NodeProcesses.CliAsync($"vm create {seed} --id flooded --on A --ram 256MiB --device vfio:gpu0:4MiB --dirty-rate 4MiB", Timeout);
            Assert.True(create.Code == 0, create.Err + create.Out);

            using var stop = new CancellationTokenSource();
            var idle = new IdleHolders();
            var holders = Enumerable.Range(0, IdleConnections).Select(_ => idle.HoldAsync(listenerPort, stop.Token)).ToArray();
            Task<int>? storm = null;
            try
            {
                // Wait until the idle connections are in: every one accepted (the node sent its challenge) at least once.
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (idle.Accepted < IdleConnections && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100);
                }

                Assert.True(idle.Accepted >= IdleConnections, $"only {idle.Accepted} idle connections were accepted by B's listener");
                storm = StormAsync(listenerPort, stop.Token);
                await Task.Delay(TimeSpan.FromSeconds(1));

                var openAtStart = idle.Open;
                var json = Path.Combine(dir, "report.json");
                var migrate = await NodeProcesses.CliAsync($"migrate {seed} --vm flooded --to B --json {json}", Timeout);
                var stormRunning = !storm.IsCompleted;
                var openAtEnd = idle.Open;
                await stop.CancelAsync();
                var attempts = await storm.WaitAsync(TimeSpan.FromSeconds(30));
                await Task.WhenAll(holders).WaitAsync(TimeSpan.FromSeconds(30));

                output.WriteLine($"idle connects {idle.Connects}, open at start {openAtStart}, at end {openAtEnd}; storm {attempts} connections, running at the end: {stormRunning}");
                Assert.True(migrate.Code == 0, migrate.Err + migrate.Out);
                var report = await File.ReadAllTextAsync(json);
                Assert.Contains("\"status\": \"completed\"", report);
                Assert.Contains("\"verified\": true", report);
                // The flood was really on while the migration ran: idle connections held open on B's listener when it
                // started and when it ended, and the storm still going (or all of it done) when it finished.
                Assert.True(openAtStart >= ListenerSlots / 2, $"only {openAtStart} idle connections were open when the migration started");
                Assert.True(openAtEnd >= ListenerSlots / 2, $"only {openAtEnd} idle connections were open when the migration ended");
                Assert.True(stormRunning || attempts >= StormConnections, $"the storm ended ({attempts} connections) before the migration did");
                Assert.InRange(attempts, 1, StormConnections);
                Assert.InRange(idle.Connects, IdleConnections, IdleConnections + MaxIdleReopens);
            }
            finally
            {
                await stop.CancelAsync();
                idle.CloseAll();
                if (storm is not null)
                {
                    await Task.WhenAny(storm, Task.Delay(TimeSpan.FromSeconds(30)));
                }

                await Task.WhenAny(Task.WhenAll(holders), Task.Delay(TimeSpan.FromSeconds(30)));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The listener's handshake slots (ChannelListener.MaxPendingHandshakes); at least half as many idle connections are asserted open at once.</summary>
    private const int ListenerSlots = 64;

    /// <summary>
    /// Idle connections that never send a byte. Each holder connects, waits until the node closes the connection
    /// (evicted or timed out), pauses and reconnects; at most <see cref="MaxIdleReopens"/> reconnects in all.
    /// </summary>
    private sealed class IdleHolders
    {
        private readonly List<Socket> _sockets = [];
        private int _open;
        private int _accepted;
        private int _connects;

        /// <summary>Connections open now (connected, not yet closed by the node).</summary>
        public int Open => Volatile.Read(ref _open);

        /// <summary>Holders whose connection the node accepted (sent its challenge) at least once.</summary>
        public int Accepted => Volatile.Read(ref _accepted);

        public int Connects => Volatile.Read(ref _connects);

        public async Task HoldAsync(int port, CancellationToken ct)
        {
            var accepted = false;
            var buffer = new byte[256];
            while (!ct.IsCancellationRequested)
            {
                if (Interlocked.Increment(ref _connects) > IdleConnections + MaxIdleReopens)
                {
                    return;
                }

                Socket s;
                try
                {
                    s = await ConnectAsync(port, ct);
                }
                catch (Exception) when (!ct.IsCancellationRequested)
                {
                    await Pause(ct);
                    continue;
                }
                catch (Exception)
                {
                    return;
                }

                lock (_sockets)
                {
                    _sockets.Add(s);
                }

                Interlocked.Increment(ref _open);
                try
                {
                    // Read (and ignore) the challenge; 0 bytes = the node closed the connection.
                    while (await s.ReceiveAsync(buffer, SocketFlags.None, ct) > 0)
                    {
                        if (!accepted)
                        {
                            accepted = true;
                            Interlocked.Increment(ref _accepted);
                        }
                    }
                }
                catch (Exception)
                {
                    // reset by the node, or stopped
                }
                finally
                {
                    Interlocked.Decrement(ref _open);
                    lock (_sockets)
                    {
                        _sockets.Remove(s);
                    }

                    s.Dispose();
                }

                await Pause(ct);
            }
        }

        public void CloseAll()
        {
            lock (_sockets)
            {
                foreach (var s in _sockets)
                {
                    s.Dispose();
                }

                _sockets.Clear();
            }
        }

        private static async Task Pause(CancellationToken ct)
        {
            try
            {
                await Task.Delay(ReopenPause, ct);
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }
    }

    /// <summary>Up to 2000 connect-and-close, spread over 20 s (about 100 a second); returns how many connected.</summary>
    private static async Task<int> StormAsync(int port, CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        var done = 0;
        for (var i = 0; i < StormConnections && !ct.IsCancellationRequested; i++)
        {
            var due = started + StormDuration * ((double)i / StormConnections);
            if (due > DateTime.UtcNow)
            {
                await Task.Delay(due - DateTime.UtcNow, CancellationToken.None);
            }

            try
            {
                using var s = await ConnectAsync(port, ct);
                done++;
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                // the backlog was full for a moment: the storm goes on
            }
            catch (Exception)
            {
                break;
            }
        }

        return done;
    }

    private static async Task<Socket> ConnectAsync(int port, CancellationToken ct)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }
}
