using System.Buffers;
using System.Runtime.CompilerServices;

namespace Migration.Transport.Channels;

/// <summary>
/// The receive side's small read-ahead buffer (issue 9 point 2): the fixed parts of a packet (header, type header,
/// page offsets) come from one socket receive of up to <c>readAhead</c> bytes instead of one receive each, and page
/// data goes straight into guest memory (<see cref="ReadIntoAsync"/>: the few bytes already read ahead are copied,
/// the rest is received in place). A receive returns what the socket holds, so read-ahead never waits for bytes
/// that have not arrived: it only saves calls.
/// Ownership: owned by one PacketReceiver and used only by its loop (one caller at a time). The buffer is rented
/// from ArrayPool&lt;byte&gt;.Shared at creation and returned by <see cref="Dispose"/>, after the loop ended.
/// Memory returned by <see cref="ReadAsync"/> is valid until the next ReadAsync (which may compact the buffer).
/// </summary>
public sealed class PacketReadBuffer : IDisposable
{
    private readonly IChannelIo _io;
    private readonly int _channel;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private long _receivedBytes;
    private long _receives;

    public PacketReadBuffer(IChannelIo io, int capacity, int channel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 64);
        _io = io;
        _channel = channel;
        _buffer = ArrayPool<byte>.Shared.Rent(capacity);
    }

    /// <summary>Most bytes one <see cref="ReadAsync"/> can return.</summary>
    public int Capacity => _buffer.Length;

    /// <summary>Bytes read ahead and not consumed yet.</summary>
    public int Buffered => _end - _start;

    /// <summary>Bytes received from the connection so far (any thread may read it).</summary>
    public long ReceivedBytes => Volatile.Read(ref _receivedBytes);

    /// <summary>Socket receive calls so far (for tests and diagnostics; any thread may read it).</summary>
    public long Receives => Volatile.Read(ref _receives);

    /// <summary>Raised after every receive that returned bytes (the receiver's idle watchdog).</summary>
    public Action? OnReceived { get; set; }

    /// <summary>
    /// The next <paramref name="count"/> bytes. If fewer are buffered, receives (as few times as the socket allows)
    /// until they are, reading ahead up to <paramref name="readAhead"/> bytes from the current position.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>> ReadAsync(int count, int readAhead, string what, CancellationToken ct)
    {
        if ((uint)count > (uint)_buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"channel {_channel}: {what} of {count} bytes exceeds the read buffer of {_buffer.Length} bytes");
        }

        if (Buffered < count)
        {
            var target = Math.Clamp(readAhead, count, _buffer.Length);
            if (_start + target > _buffer.Length)
            {
                _buffer.AsSpan(_start, Buffered).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }

            while (Buffered < count)
            {
                var n = await _io.ReceiveAsync(_buffer.AsMemory(_end, _start + target - _end), ct).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new ChannelClosedException(_channel, $"channel {_channel}: peer closed the connection after {Buffered} of {count} bytes of {what}");
                }

                _end += n;
                Received(n);
            }
        }

        var result = _buffer.AsMemory(_start, count);
        Consume(count);
        return result;
    }

    /// <summary>Fills <paramref name="destination"/>: first with read-ahead bytes, then straight from the connection.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadIntoAsync(Memory<byte> destination, string what, CancellationToken ct)
    {
        var got = Math.Min(Buffered, destination.Length);
        _buffer.AsSpan(_start, got).CopyTo(destination.Span);
        Consume(got);
        while (got < destination.Length)
        {
            var n = await _io.ReceiveAsync(destination[got..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new ChannelClosedException(_channel, $"channel {_channel}: peer closed the connection after {got} of {destination.Length} bytes of {what}");
            }

            got += n;
            Received(n);
        }
    }

    private void Consume(int count)
    {
        _start += count;
        if (_start == _end)
        {
            // Empty: the next read-ahead starts at the front (never compacts a partial packet needlessly).
            _start = 0;
            _end = 0;
        }
    }

    private void Received(int n)
    {
        Interlocked.Add(ref _receivedBytes, n);
        Interlocked.Increment(ref _receives);
        OnReceived?.Invoke();
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);
}
