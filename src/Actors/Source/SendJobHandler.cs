using Akka.Actor;
using Migration.Transport.Channels;
using Migration.Transport.Wire;

namespace Migration.Actors.Source;

/// <summary>
/// What a source channel's sender thread does with the coordinator's jobs: encodes and sends each with the blocking,
/// gathered PacketWriter calls, and reports its JobDone straight to the coordinator (not through the SendChannel). A
/// send failure goes to the SendChannel (connection state is its business), tagged with the connection's generation.
/// Runs on one sender thread (its JobDone ring is touched only there).
/// Buffers: a RAM job's page list goes back to ArrayPool&lt;long&gt;.Shared once sent or dropped; a device chunk's buffer
/// belongs to the coordinator's SentChunkLedger and is only read here.
/// The whole digest segments a RAM job covers are hashed right after it was sent, from cache (SourceRamDigests.OnSent).
/// </summary>
internal sealed class SendJobHandler(int channel, IActorRef coordinator, IActorRef sendChannel, int generation, int queueDepth,
    SourceRamDigests? digests = null)
    : IChannelSendHandler<SendJob, JobDone>
{
    // The completions of this connection, reused round-robin (no allocation per packet). Safe with queue-depth + 1 of
    // them: the coordinator gives this channel job j only after it handled the JobDone of job j - queue-depth, so when
    // job j completes, the JobDone of job j - (queue-depth + 1), whose object is refilled, was handled long ago. The
    // coordinator reads a JobDone while handling it and keeps no reference (JobDone's contract).
    private readonly JobDone[] _ring = Enumerable.Range(0, queueDepth + 1).Select(_ => new JobDone()).ToArray();
    private int _next;

    private JobDone Next()
    {
        var done = _ring[_next];
        _next = (_next + 1) % _ring.Length;
        return done;
    }

    public JobDone Send(PacketWriter writer, SendJob job, CancellationToken ct)
    {
        switch (job)
        {
            case RamJob ram:
                {
                    var iteration = ram.Iteration;
                    RamPacketResult r;
                    try
                    {
                        r = writer.WriteRam(ram.Block, ram.BlockIndex, ram.Pages, ram.Count, iteration, ct);
                        digests?.OnSent(ram.BlockIndex, ram.Pages, ram.Count);
                    }
                    finally
                    {
                        ram.ReturnPages(); // back to the scanner's pool: not touched after this
                    }

                    return Next().Set(channel, JobKind.Ram, r.NormalPages, r.ZeroPages, 0, r.WireBytes, iteration, -1, r.UncompressedPages);
                }

            case DeviceChunkJob d:
                {
                    var c = d.Chunk;
                    var header = new DeviceChunkHeader(
                        (ushort)c.DeviceIndex,
                        c.StopCopy ? DevicePhase.StopCopy : DevicePhase.Precopy,
                        c.Last ? DeviceChunkFlags.Last : DeviceChunkFlags.None,
                        d.Instance,
                        (ulong)c.Index,
                        (uint)c.Length);
                    var wire = writer.WriteDeviceChunk(header, c.Buffer.AsMemory(0, c.Length), ct);
                    return Next().Set(channel, JobKind.Device, 0, 0, c.Length, wire, 0, c.DeviceIndex);
                }

            case SyncJob s:
                writer.WriteSync(s.Iteration, ct);
                return Next().Set(channel, JobKind.Sync, 0, 0, 0, PacketHeader.Size + SyncPacket.Size, s.Iteration, -1);

            case EndJob:
                writer.WriteEnd(ct);
                return Next().Set(channel, JobKind.End, 0, 0, 0, PacketHeader.Size + EndPacket.Size, 0, -1);

            default:
                throw new InvalidOperationException($"channel {channel}: unknown job {job.GetType().Name}");
        }
    }

    public void Completed(JobDone done) => coordinator.Tell(done, ActorRefs.NoSender);

    public void Dropped(SendJob job)
    {
        if (job is RamJob r)
        {
            r.ReturnPages();
        }
    }

    public void Failed(Exception error) => sendChannel.Tell(new SendChannel.SendFailed(error, generation), ActorRefs.NoSender);
}
