using System.Net;
using System.Net.Sockets;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// A connected TCP socket pair on 127.0.0.1 (listener on port 0, connect, accept): <see cref="Sender"/> plays the
/// source end of a channel, <see cref="Receiver"/> the destination end. Dispose closes both.
/// </summary>
internal sealed class LoopbackSocketPair : IDisposable
{
    /// <summary>Bound on every socket operation of these tests.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private LoopbackSocketPair(Socket sender, Socket receiver)
    {
        Sender = sender;
        Receiver = receiver;
    }

    public Socket Sender { get; }

    public Socket Receiver { get; }

    public static async Task<LoopbackSocketPair> CreateAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            var accept = listener.AcceptSocketAsync();
            await sender.ConnectAsync((IPEndPoint)listener.LocalEndpoint).WaitAsync(Timeout);
            var receiver = await accept.WaitAsync(Timeout);
            SocketIo.Tune(sender);
            SocketIo.Tune(receiver);
            return new LoopbackSocketPair(sender, receiver);
        }
        catch
        {
            sender.Dispose();
            throw;
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> with a PacketWriter on a fresh pair and returns every byte it put on the wire
    /// (for tests that corrupt a real packet before feeding it to a receiver).
    /// </summary>
    public static async Task<byte[]> CaptureAsync(Func<PacketWriter, CancellationToken, Task> write, int channelIndex = 0,
        IRamCodec? codec = null, int maxPagesPerPacket = 128, bool earlyAbort = true)
    {
        using var pair = await CreateAsync();
        using var cts = new CancellationTokenSource(Timeout);
        var read = Task.Run(async () =>
        {
            using var captured = new MemoryStream();
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var n = await pair.Receiver.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return captured.ToArray();
                }

                captured.Write(buffer, 0, n);
            }
        });
        using (var writer = new PacketWriter(pair.Sender, channelIndex, codec, zeroDetection: true, maxPagesPerPacket, earlyAbort))
        {
            await write(writer, cts.Token).WaitAsync(Timeout);
        }

        pair.Sender.Shutdown(SocketShutdown.Send);
        return await read.WaitAsync(Timeout);
    }

    /// <summary>Sends raw bytes from the sender end.</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes) =>
        await SocketIo.SendAllAsync(Sender, bytes, CancellationToken.None).AsTask().WaitAsync(Timeout);

    public void Dispose()
    {
        Sender.Dispose();
        Receiver.Dispose();
    }
}
