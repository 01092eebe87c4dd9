using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Migration.Actors.Messages;
using Migration.Actors.Node;
using Migration.Actors.Settings;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Migration.Transport.Channels;
using Migration.Transport.Wire;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// A single-node cluster with the real HypervisorNode at /user/node; a TestProbe (<see cref="Source"/>) plays the
/// source coordinator, and the test itself plays the source's data channels with raw sockets on 127.0.0.1.
/// Every wait is bounded (<see cref="Timeout"/>); sockets opened through the helpers are closed on dispose.
/// </summary>
public abstract class IncomingSpecBase : Akka.TestKit.Xunit2.TestKit
{
    protected static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    protected const int ChunkSize = 64 * 1024;
    protected const long Budget = 128 * 1024;
    protected const long RamBytes = 4L << 20;

    private readonly List<Socket> _sockets = [];

    protected IncomingSpecBase(ITestOutputHelper output)
        : base(IncomingSpecConfig(), "incoming-spec", output)
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        Node = Sys.ActorOf(HypervisorNode.Props(MigrationSettings.FromConfig(Sys.Settings.Config)), HypervisorNode.Name);
        Source = CreateTestProbe("source");
    }

    protected IActorRef Node { get; }

    /// <summary>Plays the source coordinator: receives PrepareAck, DeviceCredit, IncomingFailed, DestinationVerified ...</summary>
    protected TestProbe Source { get; }

    public static Config IncomingSpecConfig() => ConfigurationFactory.ParseString("""
        akka.remote.dot-netty.tcp.port = 0
        akka.cluster.roles = [hypervisor]
        akka.actor.serialize-messages = on
        akka.loglevel = WARNING
        migration.prefault-destination = off
        # In-process pairs on a loaded machine: a pause must not look like a hang (keep-majority would then down the
        # higher-address system on the 1-1 tie and end the spec's node).
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 10s
        """).WithFallback(NodeHost.ReferenceConfig());

    /// <summary>4 MiB of RAM (one block of 1024 pages) and one vfio device of 256 KiB, no precopy share.</summary>
    protected static GuestSpec Spec(string id = "vm-in") =>
        new(id, RamBytes, [new DeviceSpec("d0", DeviceKind.Vfio, 0, 256 * 1024, 0)]);

    protected static MigrationSettings Settings() => new()
    {
        Channels = 2,
        ChunkSize = ChunkSize,
        DeviceBufferBudget = Budget,
        PrefaultDestination = false,
    };

    /// <summary>Sends PrepareIncoming from <paramref name="source"/> (default <see cref="Source"/>) and expects the ack.</summary>
    protected async Task<PrepareAck> PrepareAsync(Guid migrationId, GuestSpec? spec = null, TestProbe? source = null, MigrationSettings? settings = null)
    {
        source ??= Source;
        Node.Tell(new PrepareIncoming(migrationId, spec ?? Spec(), MigrationParameters.From(settings ?? Settings()), source.Ref), source.Ref);
        var ack = await source.ExpectMsgAsync<PrepareAck>(Timeout);
        Assert.Equal(migrationId, ack.MigrationId);
        Assert.Equal(Budget, ack.DeviceBufferBudget);
        Assert.Equal(WireConstants.TokenLength, ack.Token.Length);
        return ack;
    }

    /// <summary>A TCP connection to the node's channel listener, without handshake (closed on dispose).</summary>
    protected async Task<Socket> OpenAsync(PrepareAck ack)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        lock (_sockets)
        {
            _sockets.Add(socket);
        }

        await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(ack.Host), ack.Port)).WaitAsync(Timeout);
        SocketIo.Tune(socket);
        return socket;
    }

    /// <summary>Connects channel <paramref name="index"/> of 2 and runs the client handshake (throws ChannelSetupException on refusal).</summary>
    protected async Task<Socket> ConnectAsync(PrepareAck ack, int index, byte[]? token = null, Guid? migrationId = null, ushort connection = 0)
    {
        var socket = await OpenAsync(ack);
        using var cts = new CancellationTokenSource(Timeout);
        await ChannelHandshake.ClientAsync(new SocketChannelIo(socket), token ?? ack.Token, migrationId ?? ack.MigrationId, index, Settings().Channels, cts.Token, connection)
            .WaitAsync(Timeout);
        return socket;
    }

    /// <summary>Bytes the peer sends until it closes the connection (bounded; fails if it stays open).</summary>
    protected static async Task<byte[]> ReadUntilClosedAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(Timeout);
        using var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                return received.ToArray(); // reset by the peer: closed as well
            }

            if (n == 0)
            {
                return received.ToArray();
            }

            received.Write(buffer, 0, n);
        }
    }

    /// <summary>The IncomingFailed of <paramref name="migrationId"/>, skipping credits.</summary>
    protected async Task<IncomingFailed> ExpectIncomingFailedAsync(Guid migrationId)
    {
        var message = await Source.FishForMessageAsync(m => m is not (DeviceCredit or IterationReceived), Timeout);
        var failed = Assert.IsType<IncomingFailed>(message);
        Assert.Equal(migrationId, failed.MigrationId);
        return failed;
    }

    /// <summary>
    /// The node survived: the failed migration's actor is gone, the node owns no guest, a new migration (another
    /// id, another guest) is prepared and accepts a channel, and is aborted again.
    /// </summary>
    protected async Task AssertNodeStillWorksAsync(IActorRef? goneIncoming = null)
    {
        if (goneIncoming is not null)
        {
            var watcher = CreateTestProbe();
            watcher.Watch(goneIncoming);
            await watcher.ExpectTerminatedAsync(goneIncoming, Timeout);
        }

        await AssertNoGuestAsync();
        var next = CreateTestProbe("next-source");
        var id = Guid.NewGuid();
        var ack = await PrepareAsync(id, Spec("vm-next"), next);
        await ConnectAsync(ack, 1);
        var watch = CreateTestProbe();
        watch.Watch(ack.Incoming);
        Node.Tell(new AbortIncoming(id, "spec finished"), next.Ref);
        await watch.ExpectTerminatedAsync(ack.Incoming, Timeout);
        await AssertNoGuestAsync();
    }

    protected async Task AssertNoGuestAsync()
    {
        var asker = CreateTestProbe();
        Node.Tell(ListGuests.Instance, asker.Ref);
        var list = await asker.ExpectMsgAsync<GuestList>(Timeout);
        Assert.Empty(list.Guests);
    }

    /// <summary>The stop-copy state of <paramref name="device"/>, cut into chunks as DeviceSaver does.</summary>
    protected static (List<byte[]> Chunks, string Digest) SaveDeviceState(IMigratableDevice device, int chunkSize)
    {
        device.StartStopCopy();
        var chunks = new List<byte[]>();
        var buffer = new byte[chunkSize];
        while (true)
        {
            var n = device.ReadStopCopy(buffer);
            chunks.Add(buffer[..n]);
            if (n == 0 || device.StopCopyRemainingBytes == 0)
            {
                break;
            }
        }

        device.FinishStopCopy();
        return (chunks, device.ComputeDigest().ToString("x32"));
    }

    protected static DeviceChunkHeader ChunkHeader(int index, int length, bool last, ushort device = 0, uint instance = 0) =>
        new(device, DevicePhase.StopCopy, last ? DeviceChunkFlags.Last : DeviceChunkFlags.None, instance, (ulong)index, (uint)length);

    /// <summary>A device-state packet built by hand (for lengths PacketWriter would never produce consistently).</summary>
    protected static byte[] DevicePacket(DeviceChunkHeader header, ReadOnlySpan<byte> payload, uint? bodyLength = null)
    {
        var bytes = new byte[PacketHeader.Size + DeviceChunkHeader.Size + payload.Length];
        header.WriteTo(bytes.AsSpan(PacketHeader.Size));
        payload.CopyTo(bytes.AsSpan(PacketHeader.Size + DeviceChunkHeader.Size));
        var checksum = new PacketChecksum().ComputeDevice(header, payload);
        new PacketHeader(PacketType.DeviceState, PacketFlags.None, bodyLength ?? header.ExpectedBodyLength, checksum).WriteTo(bytes);
        return bytes;
    }

    protected static Task SendAsync(Socket socket, ReadOnlyMemory<byte> bytes) =>
        SocketIo.SendAllAsync(socket, bytes, CancellationToken.None).AsTask().WaitAsync(Timeout);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
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

        base.Dispose(disposing);
    }
}
