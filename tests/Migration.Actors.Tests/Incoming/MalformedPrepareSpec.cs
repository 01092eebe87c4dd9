using Migration.Actors.Messages;
using Migration.Actors.Settings;
using Xunit;
using Xunit.Abstractions;

namespace Migration.Actors.Tests.Incoming;

/// <summary>
/// A PrepareIncoming that fails validation is refused with its reason, and does not discard the incoming copy of the
/// same guest from the same source that a valid one would supersede (it used to: the copy was aborted before the
/// prepare was validated, and a prepare without a source or spec threw in the node instead of being answered).
/// </summary>
public sealed class MalformedPrepareSpec(ITestOutputHelper output) : IncomingSpecBase(output)
{
    [Fact]
    public async Task An_invalid_prepare_is_refused_and_the_copy_it_would_supersede_lives_on()
    {
        var ack = await PrepareAsync(Guid.NewGuid(), Spec("vm-a"));
        var watch = CreateTestProbe();
        watch.Watch(ack.Incoming);

        var bad = Guid.NewGuid();
        var parameters = MigrationParameters.From(Settings()) with { Channels = 0 };
        Node.Tell(new PrepareIncoming(bad, Spec("vm-a"), parameters, Source.Ref), Source.Ref);

        var refused = await Source.ExpectMsgAsync<PrepareRefused>(Timeout);
        Assert.Equal(bad, refused.MigrationId);
        Assert.Contains("channels = 0; expected 1..64", refused.Reason);
        await watch.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300)); // the first copy was not aborted
        await ConnectAsync(ack, 0); // and still takes its channels
    }

    [Fact]
    public async Task A_prepare_without_a_guest_spec_is_refused_with_the_reason()
    {
        var id = Guid.NewGuid();
        Node.Tell(new PrepareIncoming(id, null!, MigrationParameters.From(Settings()), Source.Ref), Source.Ref);

        var refused = await Source.ExpectMsgAsync<PrepareRefused>(Timeout);
        Assert.Equal(id, refused.MigrationId);
        Assert.Contains("prepare without guest spec", refused.Reason);
    }
}
