using System.Net.Sockets;
using System.Runtime.InteropServices;
using Migration.Devices.Ram;
using Migration.Devices.Workload;
using Migration.Transport.Channels;
using Migration.Transport.Codecs;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>
/// The sender thread's blocking, gathered path: it puts exactly the bytes of the async path on the wire (so every
/// golden, round-trip and rejection test of the packets holds for it), survives partial sends through a tiny send
/// buffer, stops when cancelled while the peer does not read, and fails on a reset connection.
/// </summary>
public sealed class GatheredSendTests
{
    private const int Pages = 300;

    private static unsafe SendSegment At(nint address, int length) => new((byte*)address, length);

    public static TheoryData<CodecId, bool> Cases => new()
    {
        { CodecId.None, false },
        { CodecId.None, true },
        { CodecId.Zstd, false },
        { CodecId.Lz4, true },
    };

    /// <summary>Two packets per case (a RAM packet of few runs and one of many, so direct and staged), a device chunk, Sync, End.</summary>
    private static async Task<byte[]> Capture(RamBlock block, CodecId codec, bool manyRuns, bool blocking)
    {
        var few = new long[] { 0, 1, 2, 3, 40, 41, 42, 200 };
        var many = Enumerable.Range(0, 40).Select(i => (long)(i * 7)).ToArray();
        var pages = manyRuns ? many : few;
        var chunk = Enumerable.Range(0, 5000).Select(i => (byte)(i * 31)).ToArray();
        var header = new DeviceChunkHeader(1, DevicePhase.Precopy, DeviceChunkFlags.None, 9, 3, (uint)chunk.Length);
        var c = codec == CodecId.None ? null : RamCodecRegistry.Default.Create(codec, 1);
        try
        {
            return await LoopbackSocketPair.CaptureAsync(async (w, ct) =>
            {
                if (blocking)
                {
                    await Task.Run(() =>
                    {
                        w.WriteRam(block, 0, pages, pages.Length, 1, ct);
                        w.WriteRam(block, 0, few, few.Length, 2, ct);
                        w.WriteDeviceChunk(header, chunk, ct);
                        w.WriteSync(2, ct);
                        w.WriteEnd(ct);
                    }, ct);
                }
                else
                {
                    await w.WriteRamAsync(block, 0, pages, pages.Length, 1, ct);
                    await w.WriteRamAsync(block, 0, few, few.Length, 2, ct);
                    await w.WriteDeviceChunkAsync(header, chunk, ct);
                    await w.WriteSyncAsync(2, ct);
                    await w.WriteEndAsync(ct);
                }
            }, codec: c);
        }
        finally
        {
            c?.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Blocking_gathered_writer_sends_the_same_bytes_as_the_async_writer(CodecId codec, bool manyRuns)
    {
        using var block = RamBlock.Create("gather", Pages * (long)RamBlock.PageSize);
        GuestRamFiller.Fill(block, RamFillPattern.Mixed, 17);
        var expected = await Capture(block, codec, manyRuns, blocking: false);
        var actual = await Capture(block, codec, manyRuns, blocking: true);
        Assert.True(expected.Length > 8 * RamBlock.PageSize || codec != CodecId.None, $"only {expected.Length} bytes captured");
        Assert.Equal(expected, actual);
    }

    [Fact]
    public async Task Gathered_send_delivers_every_piece_in_order_through_partial_sends()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        // A send buffer far below the 1.16 MB sent: sendmsg returns partial counts and EAGAIN (not tiny: TCP with a
        // window of a few KiB crawls on zero-window probes).
        pair.Sender.SendBufferSize = 64 * 1024;
        var sizes = new[] { 17, 65536, 1, 300_000, 4096, 0, 12345, 777_777, 3 };
        var pieces = sizes.Select((n, i) => Enumerable.Range(0, n).Select(k => (byte)(k ^ (i * 37))).ToArray()).ToArray();
        var expected = pieces.SelectMany(p => p).ToArray();
        // One piece lives in unmanaged memory, as guest RAM does.
        var native = NativeBuffer.Alloc(pieces[3]);
        try
        {
            var handles = pieces.Select(p => GCHandle.Alloc(p, GCHandleType.Pinned)).ToArray();
            try
            {
                var segments = pieces.Select((p, i) => At(i == 3 ? native : handles[i].AddrOfPinnedObject(), p.Length)).ToArray();
                var send = Task.Run(() => GatherSend.SendAll(pair.Sender, segments, CancellationToken.None));
                var received = new byte[expected.Length];
                await Task.Delay(50); // the sender meets a full buffer (EAGAIN) before anything is read
                var receive = SocketIo.ReceiveExactlyAsync(pair.Receiver, received, 0, "gathered pieces", CancellationToken.None).AsTask();
                await send.WaitAsync(LoopbackSocketPair.Timeout);
                await receive.WaitAsync(LoopbackSocketPair.Timeout);
                Assert.Equal(expected, received);
            }
            finally
            {
                foreach (var h in handles)
                {
                    h.Free();
                }
            }
        }
        finally
        {
            NativeBuffer.Free(native);
        }
    }

    [Fact]
    public async Task Gathered_send_stops_when_cancelled_while_the_peer_does_not_read_and_fails_on_a_reset()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        var big = new byte[32 << 20];
        using var cts = new CancellationTokenSource();
        var handle = GCHandle.Alloc(big, GCHandleType.Pinned);
        try
        {
            var segment = new[] { At(handle.AddrOfPinnedObject(), big.Length) };
            var blocked = Task.Run(() => GatherSend.SendAll(pair.Sender, segment, cts.Token));
            await Task.Delay(100);
            Assert.False(blocked.IsCompleted, "32 MiB fit into the socket buffers of a peer that does not read");
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked.WaitAsync(LoopbackSocketPair.Timeout));

            // The peer resets the connection: the next send fails instead of blocking.
            pair.Receiver.LingerState = new LingerOption(true, 0);
            pair.Receiver.Close();
            var failed = Task.Run(() => GatherSend.SendAll(pair.Sender, segment, CancellationToken.None));
            var error = await Assert.ThrowsAnyAsync<Exception>(() => failed.WaitAsync(LoopbackSocketPair.Timeout));
            Assert.True(error is SocketException or IOException, $"unexpected {error.GetType().Name}: {error.Message}");
        }
        finally
        {
            handle.Free();
        }
    }
}

/// <summary>Unmanaged memory holding a copy of some bytes (plays guest RAM).</summary>
internal static unsafe class NativeBuffer
{
    public static nint Alloc(byte[] content)
    {
        var p = (byte*)NativeMemory.Alloc((nuint)content.Length);
        content.CopyTo(new Span<byte>(p, content.Length));
        return (nint)p;
    }

    public static void Free(nint p) => NativeMemory.Free((void*)p);
}
