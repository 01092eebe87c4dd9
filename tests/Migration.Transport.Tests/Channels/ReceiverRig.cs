using Migration.Devices.Ram;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// One destination channel under test: a loopback pair, a <see cref="PacketReceiver"/> running on the pool over the
/// receiving end, and a <see cref="PacketWriter"/> on the sending end (same codec). DisposeAsync closes the sockets,
/// waits (bounded) for the loop to end and only then returns the receiver's and writer's rented buffers.
/// </summary>
internal sealed class ReceiverRig : IAsyncDisposable
{
    /// <summary>Device table of every rig: device 0 = instance 7, device 1 = instance 8.</summary>
    public static readonly DeviceSlot[] Devices = [DeviceSlot.Of(7), DeviceSlot.Of(8)];

    public const int MaxPages = 128;
    public const int MaxChunk = 64 * 1024;

    private readonly CancellationTokenSource _cts = new(LoopbackSocketPair.Timeout);
    private readonly IRamCodec? _decoder;
    private readonly IRamCodec? _encoder;

    private ReceiverRig(LoopbackSocketPair pair, int channel, CodecId codec, IReadOnlyList<RamBlock> blocks, RecordingPacketSink sink, uint firstIteration,
        IRamWriteObserver? written)
    {
        Pair = pair;
        Sink = sink;
        Channel = channel;
        Limits = new ReceiveLimits(codec, MaxPages, MaxChunk, blocks.Select(b => (long)b.PageCount).ToArray(), Devices);
        _decoder = CreateCodec(codec);
        _encoder = CreateCodec(codec);
        Receiver = new PacketReceiver(new SocketChannelIo(pair.Receiver), Limits.ForChannel(channel), blocks, _decoder, sink, firstIteration, written);
        Writer = new PacketWriter(pair.Sender, channel, _encoder, zeroDetection: true, MaxPages);
        var receiver = Receiver;
        var ct = _cts.Token;
        Loop = Task.Run(() => receiver.RunAsync(ct));
    }

    public LoopbackSocketPair Pair { get; }
    public RecordingPacketSink Sink { get; }
    public int Channel { get; }
    public ReceiveLimits Limits { get; }
    public PacketReceiver Receiver { get; }
    public PacketWriter Writer { get; }
    public Task<EndPacket> Loop { get; }
    public CancellationToken Token => _cts.Token;

    public static async Task<ReceiverRig> StartAsync(CodecId codec, IReadOnlyList<RamBlock> blocks, RecordingPacketSink sink, int channel = 0, uint firstIteration = 1,
        IRamWriteObserver? written = null) =>
        new(await LoopbackSocketPair.CreateAsync(), channel, codec, blocks, sink, firstIteration, written);

    public static IRamCodec? CreateCodec(CodecId codec) => codec == CodecId.None ? null : RamCodecRegistry.Default.Create(codec, 1);

    /// <summary>The loop's End (bounded wait).</summary>
    public Task<EndPacket> EndAsync() => Loop.WaitAsync(LoopbackSocketPair.Timeout);

    /// <summary>Asserts that the loop fails with <typeparamref name="T"/> (bounded wait) and returns it.</summary>
    public async Task<T> FailureAsync<T>() where T : Exception =>
        await Assert.ThrowsAsync<T>(() => Loop.WaitAsync(LoopbackSocketPair.Timeout));

    /// <summary>Runs a send sequence with the rig's writer (bounded).</summary>
    public Task SendAsync(Func<PacketWriter, CancellationToken, Task> send) =>
        Task.Run(() => send(Writer, _cts.Token)).WaitAsync(LoopbackSocketPair.Timeout);

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        Pair.Dispose();
        try
        {
            await Loop.WaitAsync(LoopbackSocketPair.Timeout);
        }
        catch (Exception)
        {
            // the loop's outcome was asserted by the test (or the test failed already)
        }

        Receiver.Dispose();
        Writer.Dispose();
        _decoder?.Dispose();
        _encoder?.Dispose();
        _cts.Dispose();
    }
}

/// <summary>Page helpers shared by the channel tests.</summary>
internal static class PageAssert
{
    /// <summary>Pages whose content differs between two blocks of the same size.</summary>
    public static List<long> DifferingPages(RamBlock expected, RamBlock actual)
    {
        var differing = new List<long>();
        for (long p = 0; p < expected.PageCount; p++)
        {
            if (!expected.Page(p).SequenceEqual(actual.Page(p)))
            {
                differing.Add(p);
            }
        }

        return differing;
    }

    public static byte[] Snapshot(RamBlock block) => block.Pages(0, block.PageCount).ToArray();
}
