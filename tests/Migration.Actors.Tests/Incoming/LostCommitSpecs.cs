using Akka.Actor;
using Akka.Cluster;
using Akka.TestKit;
using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Migration.Devices.Guest;
using Migration.Transport.Channels;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// A destination that verified the guest but never receives CommitMigration. The real destination node runs in this
/// spec's system; a second ActorSystem in the same cluster plays the source node: a TestProbe is its coordinator, and
/// another TestProbe receives whatever arrives at its /user/node, so each spec answers QueryHandover as it needs (or
/// not at all). The destination must never discard the verified copy without the source's word, and never resume it
/// while the source may still own the guest.
/// </summary>
public sealed class LostCommitSpecs : IncomingSpecBase
{
    private static readonly MigrationSettings LostCommitSettings = Settings() with { CommitTimeout = TimeSpan.FromSeconds(1) };

    private readonly ActorSystem _sourceSystem;
    private readonly TestProbe _coordinator;
    private readonly TestProbe _sourceNode;

    public LostCommitSpecs(ITestOutputHelper output)
        : base(output)
    {
        _sourceSystem = ActorSystem.Create(Sys.Name, IncomingSpecConfig());
        Akka.Cluster.Cluster.Get(_sourceSystem).Join(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        // A real source node holds a replica of the ownership record (its HypervisorNode starts the Replicator); the
        // destination's claim needs the majority of both members while the source is one.
        _ = Akka.DistributedData.DistributedData.Get(_sourceSystem);
        _coordinator = CreateTestProbe(_sourceSystem, "coordinator");
        _sourceNode = CreateTestProbe(_sourceSystem, "source-node");
        _sourceSystem.ActorOf(Props.Create(() => new Relay(_sourceNode.Ref)), "node");
    }

    [Fact]
    public async Task A_verified_guest_is_discarded_when_the_source_says_it_kept_the_guest_and_not_before()
    {
        var (ack, _, guest) = await VerifiedAsync("vm-kept");
        using var _ = guest;

        // No commit: after commit-timeout the destination asks the source node, and keeps asking while in doubt.
        var first = await ExpectQueryAsync(ack.MigrationId);
        Assert.Equal("in-doubt", (await GuestStateAsync("vm-kept"))!.State);
        _sourceNode.Reply(new HandoverStatus(ack.MigrationId, HandoverDecision.InProgress));
        var second = await ExpectQueryAsync(ack.MigrationId);
        Assert.True(second - first >= TimeSpan.FromMilliseconds(250), $"asked again after {(second - first).TotalMilliseconds:0} ms");
        Assert.Equal("in-doubt", (await GuestStateAsync("vm-kept"))!.State);

        // (ack.Incoming came through the source system; watch the destination's own reference to the actor.)
        var incoming = await Sys.ActorSelection(ack.Incoming.Path).ResolveOne(Timeout);
        var watch = CreateTestProbe();
        watch.Watch(incoming);
        _sourceNode.Reply(new HandoverStatus(ack.MigrationId, HandoverDecision.KeptBySource));
        await watch.ExpectTerminatedAsync(incoming, Timeout);
        await AssertNoGuestAsync();
        await _coordinator.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300)); // no GuestResumed: it never ran here
    }

    [Fact]
    public async Task A_stale_timer_of_an_earlier_wait_does_not_put_a_verified_guest_in_doubt_before_the_commit_timeout()
    {
        // A commit timeout of 4 s: the stale timer's window below stays far inside it, even on a loaded machine.
        var (ack, _, guest) = await VerifiedAsync("vm-stale-timer", LostCommitSettings with { CommitTimeout = TimeSpan.FromSeconds(4) });
        using var _ = guest;

        // A timer of the transfer that fired just as it verified (the channels' connect wait): only the commit's own
        // timeout may start asking the source node; before, any IncomingTimeout in Verified counted as it.
        var incoming = await Sys.ActorSelection(ack.Incoming.Path).ResolveOne(Timeout);
        incoming.Tell(new IncomingTimeout("waiting for channels"));
        await _sourceNode.ExpectNoMsgAsync(TimeSpan.FromSeconds(1));
        Assert.NotEqual("in-doubt", (await GuestStateAsync("vm-stale-timer"))?.State);

        // The commit's own timeout still puts it in doubt.
        await ExpectQueryAsync(ack.MigrationId);
        Assert.Equal("in-doubt", (await GuestStateAsync("vm-stale-timer"))!.State);
        var watch = CreateTestProbe();
        watch.Watch(incoming);
        _sourceNode.Reply(new HandoverStatus(ack.MigrationId, HandoverDecision.KeptBySource));
        await watch.ExpectTerminatedAsync(incoming, Timeout);
        await AssertNoGuestAsync();
    }

    [Fact]
    public async Task An_abort_after_the_commit_leaves_the_decision_to_the_ownership_record()
    {
        var (ack, _, guest) = await VerifiedAsync("vm-committed");
        using var _ = guest;

        // The commit starts the claim; an abort right behind it (a stray or contradicting one) must not discard the
        // copy whose claim may already be landing. Nobody took the guest back, so the claim wins and the guest runs here.
        ack.Incoming.Tell(new CommitMigration(ack.MigrationId), _coordinator.Ref);
        ack.Incoming.Tell(new AbortIncoming(ack.MigrationId, "an abort behind the commit"), _coordinator.Ref);

        var resumed = await _coordinator.FishForMessageAsync(m => m is GuestResumed, Timeout);
        Assert.Equal(ack.MigrationId, ((GuestResumed)resumed).MigrationId);
        Assert.Equal("running", (await GuestStateAsync("vm-committed"))!.State);
    }

    [Fact]
    public async Task A_verified_guest_is_resumed_without_the_commit_when_the_source_says_it_released_it()
    {
        var (ack, ramDigests, guest) = await VerifiedAsync("vm-released");
        using var _ = guest;

        await ExpectQueryAsync(ack.MigrationId);
        _sourceNode.Reply(new HandoverStatus(ack.MigrationId, HandoverDecision.HandedOver));

        var resumed = await _coordinator.ExpectMsgAsync<GuestResumed>(Timeout);
        Assert.Equal(ack.MigrationId, resumed.MigrationId);
        Assert.Equal("running", (await GuestStateAsync("vm-released"))!.State);
        // Its vCPU runs again here: RAM moves on from the verified image, and its pattern stays consistent.
        var asker = CreateTestProbe();
        GuestDigests? digests = null;
        for (var i = 0; i < 50 && (digests is null || digests.Ram.SequenceEqual(ramDigests)); i++)
        {
            await Task.Delay(100);
            Node.Tell(new GetGuestDigests("vm-released"), asker.Ref);
            digests = await asker.ExpectMsgAsync<GuestDigests>(Timeout);
        }

        Assert.True(digests!.WorkloadPatternOk, digests.PatternMessage);
        Assert.False(digests.Ram.SequenceEqual(ramDigests), "the resumed guest's workload does not run");
    }

    [Fact]
    public async Task A_verified_guest_stays_paused_while_the_source_is_silent_and_resumes_when_the_source_node_leaves_the_cluster()
    {
        var (ack, _, guest) = await VerifiedAsync("vm-orphan");
        using var _ = guest;

        // The source node does not answer (as if unreachable): the destination keeps asking and keeps the guest paused.
        for (var i = 0; i < 3; i++)
        {
            await ExpectQueryAsync(ack.MigrationId);
        }

        Assert.Equal("in-doubt", (await GuestStateAsync("vm-orphan"))!.State);
        var alive = await Sys.ActorSelection(ack.Incoming.Path).Ask<ActorIdentity>(new Identify(1), Timeout);
        Assert.NotNull(alive.Subject);

        // The source node leaves the cluster (its copy of the guest goes with it): the verified copy is the only one.
        var sourceCluster = Akka.Cluster.Cluster.Get(_sourceSystem);
        sourceCluster.Leave(sourceCluster.SelfAddress);
        GuestInfo? info = null;
        for (var i = 0; i < 200 && info?.State != "running"; i++)
        {
            await Task.Delay(100);
            info = await GuestStateAsync("vm-orphan");
        }

        Assert.Equal("running", info?.State);
        Assert.DoesNotContain(Akka.Cluster.Cluster.Get(Sys).State.Members, m => m.Address.Equals(sourceCluster.SelfAddress));
    }

    /// <summary>
    /// Prepares a migration of a 4 MiB guest without devices from the source system, sends all its RAM over two
    /// channels, then SourceDigests, and returns once the destination answered DestinationVerified.
    /// </summary>
    private async Task<(PrepareAck Ack, IReadOnlyList<string> RamDigests, GuestVm Guest)> VerifiedAsync(string vmId, MigrationSettings? settings = null)
    {
        var parameters = settings ?? LostCommitSettings;
        await WaitForTwoMembersAsync();
        var spec = new GuestSpec(vmId, RamBytes, [], DirtyRateBytesPerSecond: 8L << 20);
        var guest = GuestFactory.CreateRunning(spec);
        guest.Workload.Pause();
        var ramDigests = guest.RamDigests();

        var id = Guid.NewGuid();
        var destinationNode = new RootActorPath(Akka.Cluster.Cluster.Get(Sys).SelfAddress) / "user" / "node";
        _sourceSystem.ActorSelection(destinationNode).Tell(new PrepareIncoming(id, spec, MigrationParameters.From(parameters), _coordinator.Ref), _coordinator.Ref);
        var ack = await _coordinator.ExpectMsgAsync<PrepareAck>(Timeout);

        var sockets = new[] { await ConnectAsync(ack, 0), await ConnectAsync(ack, 1) };
        var writers = sockets.Select((s, i) => new PacketWriter(s, i, null, LostCommitSettings.ZeroPageDetection, LostCommitSettings.PacketPages)).ToArray();
        try
        {
            var block = guest.Blocks[0];
            var perPacket = LostCommitSettings.PacketPages;
            await Task.WhenAll(writers.Select((w, channel) => Task.Run(async () =>
            {
                var pages = new long[perPacket];
                for (var k = channel; k < block.PageCount / perPacket; k += writers.Length)
                {
                    for (var i = 0; i < pages.Length; i++)
                    {
                        pages[i] = ((long)k * perPacket) + i;
                    }

                    await w.WriteRamAsync(block, 0, pages, pages.Length, 1, CancellationToken.None);
                }

                await w.WriteSyncAsync(1, CancellationToken.None);
                await w.WriteEndAsync(CancellationToken.None);
            }))).WaitAsync(Timeout);

            var cpu = guest.Workload.Position;
            ack.Incoming.Tell(new SourceDigests(id, ramDigests, Array.Empty<string>(), Array.Empty<long>(), cpu.Block, cpu.Page), _coordinator.Ref);
            var verdict = await _coordinator.FishForMessageAsync(m => m is not IterationReceived, Timeout);
            var verified = Assert.IsType<DestinationVerified>(verdict);
            Assert.Equal(ramDigests, verified.Stats.RamDigests);
            return (ack, ramDigests, guest);
        }
        finally
        {
            foreach (var w in writers)
            {
                w.Dispose();
            }
        }
    }

    /// <summary>The next QueryHandover at the source node (after commit-timeout, then every second); when it arrived.</summary>
    private async Task<DateTime> ExpectQueryAsync(Guid migrationId)
    {
        var query = await _sourceNode.ExpectMsgAsync<QueryHandover>(Timeout);
        Assert.Equal(migrationId, query.MigrationId);
        return DateTime.UtcNow;
    }

    private async Task<GuestInfo?> GuestStateAsync(string vmId)
    {
        var asker = CreateTestProbe();
        Node.Tell(ListGuests.Instance, asker.Ref);
        var list = await asker.ExpectMsgAsync<GuestList>(Timeout);
        return list.Guests.SingleOrDefault(g => g.VmId == vmId);
    }

    private async Task WaitForTwoMembersAsync()
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        for (var i = 0; i < 300 && cluster.State.Members.Count(m => m.Status == MemberStatus.Up) < 2; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(2, cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _sourceSystem.Terminate().Wait(TimeSpan.FromSeconds(10));
        }

        base.Dispose(disposing);
    }

    /// <summary>Stands at the source system's /user/node and hands everything to a probe (replies go to the original sender).</summary>
    private sealed class Relay : ReceiveActor
    {
        public Relay(IActorRef probe) => ReceiveAny(m => probe.Forward(m));
    }
}
