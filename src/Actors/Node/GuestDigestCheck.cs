using Akka.Actor;
using Migration.Actors.Messages;
using Migration.Devices.Workload;

namespace Migration.Actors.Node;

/// <summary>
/// The answer to GetGuestDigests: the guest's RAM and device digests and its workload pattern check, computed on the
/// thread pool (never on the node's thread) and piped to the asker as <see cref="GuestDigests"/>.
/// </summary>
internal static class GuestDigestCheck
{
    /// <summary>Called on the node's thread with the guest's registry entry; the result goes to <paramref name="replyTo"/>.</summary>
    public static void Start(GuestEntry entry, IActorRef replyTo)
    {
        var guest = entry.Guest;
        // The pattern check and the digests read a consistent image only while the workload does not write: a guest
        // dirtying GiB/s moves its cursor past pages the checker has read (a torn read, "12 after 11"). Pause it for the
        // check unless a migration owns its pausing (then the caller gets the image as it is).
        var pause = entry.MigrationId is null;
        Task.Run(() =>
        {
            if (pause)
            {
                guest.Workload.Pause();
            }

            try
            {
                var check = WorkloadPatternChecker.Check(guest.Blocks);
                return new GuestDigests(guest.Id, guest.RamDigests(), guest.Devices.Select(d => d.ComputeDigest().ToString("x32")).ToArray(), check.Ok, check.Message);
            }
            finally
            {
                if (pause)
                {
                    guest.Workload.Resume();
                }
            }
        }).PipeTo(replyTo);
    }
}
