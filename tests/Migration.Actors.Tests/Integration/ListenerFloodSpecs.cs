using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Integration;

/// <summary>
/// Connections that never authenticate cannot keep a migration's channels out of the destination's listener: with
/// 200 idle connections held open and a storm of 2000 connect-and-close over 20 s, a migration completes and verifies.
/// Raw sockets on 127.0.0.1 only, bounded in count and time; every socket is closed at the end.
/// </summary>
public sealed class ListenerFloodSpecs
{
    private const int IdleConnections = 200;
    private const int StormConnections = 2000;
    private static readonly TimeSpan StormDuration = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_migration_completes_while_idle_connections_fill_the_listener_and_a_connect_storm_runs()
    {
        var listenerPort = FreePort();
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.actor.serialize-messages = on\nmigration.prefault-destination = off");
        await using var source = NodeHost.Start("127.0.0.1", 0, [], config);
        await source.WaitUpAsync(1, TimeSpan.FromSeconds(30));
        var destinationConfig = ConfigurationFactory.ParseString($"migration.listener.port = {listenerPort}").WithFallback(config);
        await using var destination = NodeHost.Start("127.0.0.1", 0, [source.Address], destinationConfig);
        await destination.WaitUpAsync(2, TimeSpan.FromSeconds(30));
        var spec = new GuestSpec("flooded", 32L << 20, [new DeviceSpec("gpu0", DeviceKind.Vfio, 0, 4 << 20, 2 << 20, Seed: 9)], 4L << 20);
        Assert.IsType<GuestCreated>(await source.Node.Ask<object>(new CreateGuest(spec), TimeSpan.FromSeconds(30)));

        var idle = new List<Socket>();
        using var stop = new CancellationTokenSource();
        try
        {
            for (var i = 0; i < IdleConnections; i++)
            {
                idle.Add(await ConnectAsync(listenerPort));
            }

            var storm = StormAsync(listenerPort, stop.Token);
            await Task.Delay(TimeSpan.FromSeconds(1));

            var watcher = new ReportWatcher(source.System);
            Assert.IsType<MigrationStarted>(await source.Node.Ask<object>(
                new StartMigration(spec.Id, destination.Address, TwoNodeCluster.Settings(), watcher.Actor), TimeSpan.FromSeconds(10)));
            var report = await watcher.Finished.WaitAsync(TimeSpan.FromSeconds(120));
            var stormRunning = !storm.IsCompleted;
            var attempts = await storm;

            Assert.True(report.Status == "completed", $"{report.Status}: {report.Error}");
            Assert.True(report.Verified, report.Error);
            Assert.True(stormRunning || attempts >= StormConnections, $"the storm ended ({attempts} connections) before the migration did");
            Assert.InRange(attempts, 1, StormConnections);
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var s in idle)
            {
                s.Dispose();
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
                using var s = await ConnectAsync(port);
                done++;
            }
            catch (SocketException)
            {
                // the backlog was full for a moment: the storm goes on
            }
        }

        return done;
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>A free port outside the ephemeral range (see LoopbackPorts).</summary>
    private static int FreePort()
        => Migration.Transport.Channels.LoopbackPorts.Pick();
}
