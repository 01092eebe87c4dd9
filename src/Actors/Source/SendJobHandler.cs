using Akka.Actor;
using Migration.Transport.Channels;
using Migration.Transport.Wire;

namespace Migration.Actors.Source;

/// <summary>
/// What a source channel's sender thread does with the coordinator's jobs: encodes and sends each with the blocking,
/// gathered PacketWriter calls, and reports its JobDone straight to the coordinator (not through the SendChannel). A
/// send failure goes to the SendChannel (connection state is its business), tagged with the connection's generation.
/// Runs on one sender thread; holds only immutable references.
/// Buffers: a RAM job's page list goes back to ArrayPool&lt;long&gt;.Shared once sent or dropped; a device chunk's buffer
/// belongs to the coordinator's SentChunkLedger and is only read here.
/// </summary>
internal sealed class SendJobHandler(int channel, IActorRef coordinator, IActorRef sendChannel, int generation)
    : IChannelSendHandler<SendJob, JobDone>
{
    public JobDone Send(PacketWriter writer, SendJob job, CancellationToken ct)
    {
        switch (job)
        {
            case RamJob ram:
                try
                {
                    var r = writer.WriteRam(ram.Block, ram.BlockIndex, ram.Pages, ram.Count, ram.Iteration, ct);
                    return new JobDone(channel, JobKind.Ram, r.NormalPages, r.ZeroPages, 0, r.WireBytes, ram.Iteration, -1);
                }
                finally
                {
                    ram.ReturnPages();
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
                    return new JobDone(channel, JobKind.Device, 0, 0, c.Length, wire, 0, c.DeviceIndex);
                }

            case SyncJob s:
                writer.WriteSync(s.Iteration, ct);
                return new JobDone(channel, JobKind.Sync, 0, 0, 0, PacketHeader.Size + SyncPacket.Size, s.Iteration, -1);

            case EndJob:
                writer.WriteEnd(ct);
                return new JobDone(channel, JobKind.End, 0, 0, 0, PacketHeader.Size + EndPacket.Size, 0, -1);

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
