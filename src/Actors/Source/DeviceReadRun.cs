using System.Buffers;
using System.Diagnostics;
using Akka.Actor;
using Migration.Devices.Device;

namespace Migration.Actors.Source;

/// <summary>
/// One read run of a <see cref="DeviceSaver"/>, executed by one call on the migration's worker pool: up to
/// <c>room</c> chunks read back to back (the device is driven by one thread at a time), each handed to the saver as soon
/// as it is read (<see cref="ReadDone"/>, told from the pool thread), then the run's end (<see cref="ReadRunEnded"/>,
/// its return value, piped by the saver). A run stops early at the end of the state (the chunk marked Last, after
/// FinishStopCopy and the device's digest), when PRE_COPY has nothing now (Dry), or when its token is cancelled.
/// Threading: everything here is fixed at creation on the saver's thread and the run touches none of the saver's
/// state. Buffers: each chunk's buffer is rented from the saver's pool; owner: this run until its ReadDone is told,
/// then the saver (returned here if the read throws or reads nothing).
/// </summary>
internal sealed class DeviceReadRun
{
    private readonly IMigratableDevice _device;
    private readonly ArrayPool<byte> _buffers;
    private readonly int _chunkSize;
    private readonly int _room;
    private readonly bool _stopCopy;
    private readonly CancellationToken _cancel;
    private readonly IActorRef _saver;

    public DeviceReadRun(IMigratableDevice device, ArrayPool<byte> buffers, int chunkSize, int room, bool stopCopy, CancellationToken cancel,
        IActorRef saver)
    {
        _device = device;
        _buffers = buffers;
        _chunkSize = chunkSize;
        _room = room;
        _stopCopy = stopCopy;
        _cancel = cancel;
        _saver = saver;
    }

    /// <summary>Reads the run's chunks (on a pool thread); returns how it ended.</summary>
    public ReadRunEnded Run()
    {
        for (var i = 0; i < _room && !_cancel.IsCancellationRequested; i++)
        {
            // Owner: this run until the ReadDone is sent, then the saver (its _ready queue, then the SavedChunk).
            var buffer = _buffers.Rent(_chunkSize);
            int n;
            string? digest = null;
            var last = false;
            long ticks;
            DeviceSaveInfo info;
            var started = Stopwatch.GetTimestamp();
            try
            {
                n = _stopCopy ? _device.ReadStopCopy(buffer.AsSpan(0, _chunkSize)) : _device.ReadPrecopy(buffer.AsSpan(0, _chunkSize));
                if (_stopCopy && (n == 0 || _device.StopCopyRemainingBytes == 0))
                {
                    last = true;
                    _device.FinishStopCopy();
                    digest = _device.ComputeDigest().ToString("x32");
                }

                ticks = Stopwatch.GetTimestamp() - started;
                info = Info();
            }
            catch
            {
                _buffers.Return(buffer); // not handed to the saver yet: still this run's
                throw;
            }

            if (n == 0 && !last)
            {
                // Nothing to read in PRE_COPY right now.
                _buffers.Return(buffer);
                return new ReadRunEnded(Dry: true, info);
            }

            _saver.Tell(new ReadDone(buffer, n, _stopCopy, last, digest, info, ticks));
            if (last)
            {
                break;
            }
        }

        return new ReadRunEnded(Dry: false, Info());
    }

    private DeviceSaveInfo Info() => new(_stopCopy ? 0 : _device.QueryPrecopy().Total, _device.StopCopyRemainingBytes, 0);
}

/// <summary>Read run -> saver: one chunk (sent by the pool thread); ReadTicks = Stopwatch ticks inside the device's read call.</summary>
internal sealed record ReadDone(byte[] Buffer, int Length, bool StopCopy, bool Last, string? Digest, DeviceSaveInfo Info, long ReadTicks)
    : INoSerializationVerificationNeeded;

/// <summary>A read run ended (every ReadDone of it was sent before); Dry = PRE_COPY had nothing to read.</summary>
internal sealed record ReadRunEnded(bool Dry, DeviceSaveInfo Info) : INoSerializationVerificationNeeded;
