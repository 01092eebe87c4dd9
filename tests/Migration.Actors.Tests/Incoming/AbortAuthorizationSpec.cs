using Akka.Actor;
using Migration.Actors.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// Only an incoming migration's source node (or the node's own actors) may abort it: an AbortIncoming from another
/// actor system (another member, a CLI) is answered CommandFailed "not-authorized" and the copy lives on.
/// </summary>
public sealed class AbortAuthorizationSpec : IncomingSpecBase
{
    private readonly ActorSystem _stranger;

    public AbortAuthorizationSpec(ITestOutputHelper output)
        : base(output)
    {
        _stranger = ActorSystem.Create(Sys.Name, IncomingSpecConfig());
    }

    [Fact]
    public async Task An_abort_from_another_node_than_the_source_is_refused_and_the_source_may_still_abort()
    {
        var ack = await PrepareAsync(Guid.NewGuid(), Spec("vm-a"));
        var watch = CreateTestProbe();
        watch.Watch(ack.Incoming);
        var stranger = CreateTestProbe(_stranger, "stranger");
        var node = new RootActorPath(Akka.Cluster.Cluster.Get(Sys).SelfAddress) / "user" / "node";

        _stranger.ActorSelection(node).Tell(new AbortIncoming(ack.MigrationId, "not yours"), stranger.Ref);

        var failed = await stranger.ExpectMsgAsync<CommandFailed>(Timeout);
        Assert.Equal("not-authorized", failed.Code);
        Assert.Contains($"abort of incoming migration {ack.MigrationId} from akka.tcp://", failed.Reason);
        await watch.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300)); // the copy was not discarded

        Node.Tell(new AbortIncoming(ack.MigrationId, "the source cancelled"), Source.Ref);
        await watch.ExpectTerminatedAsync(ack.Incoming, Timeout);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stranger.Terminate().Wait(TimeSpan.FromSeconds(10));
        }

        base.Dispose(disposing);
    }
}
