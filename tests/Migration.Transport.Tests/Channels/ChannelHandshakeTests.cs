using System.Net.Sockets;
using Migration.Transport.Channels;
using Migration.Transport.Wire;
using Xunit;

namespace Migration.Transport.Tests.Channels;

/// <summary>ChannelHandshake client against the server halves over a real loopback socket.</summary>
public sealed class ChannelHandshakeTests
{
    private static readonly Guid MigrationId = Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");

    private sealed record ServerSide(ServerHello Read, HelloStatus Status, string Error);

    /// <summary>The destination's part: challenge, read hello, authenticate against (token, channels), ack.</summary>
    private static Task<ServerSide> ServeAsync(Socket socket, byte[] token, int channels, CancellationToken ct) => Task.Run(async () =>
    {
        var read = await ChannelHandshake.ServerReadHelloAsync(socket, ct);
        var error = read.Error;
        var status = read.Status == HelloStatus.Accepted
            ? read.Hello.Authenticate(token, read.Challenge, channels, out error)
            : read.Status;
        await ChannelHandshake.ServerSendAckAsync(socket, status, ct);
        return new ServerSide(read, status, error);
    }, ct);

    [Fact]
    public async Task Client_with_the_right_token_is_accepted()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        using var cts = new CancellationTokenSource(LoopbackSocketPair.Timeout);
        var token = TokenProof.CreateToken();
        var server = ServeAsync(pair.Receiver, token, 4, cts.Token);

        await ChannelHandshake.ClientAsync(pair.Sender, token, MigrationId, 2, 4, cts.Token).WaitAsync(LoopbackSocketPair.Timeout);

        var side = await server.WaitAsync(LoopbackSocketPair.Timeout);
        Assert.Equal(HelloStatus.Accepted, side.Status);
        Assert.Equal(string.Empty, side.Error);
        Assert.Equal(MigrationId, side.Read.Hello.MigrationId);
        Assert.Equal(2, side.Read.Hello.ChannelIndex);
        Assert.Equal(4, side.Read.Hello.ChannelCount);
    }

    [Fact]
    public async Task Client_with_a_wrong_token_gets_BadProof_and_throws()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        using var cts = new CancellationTokenSource(LoopbackSocketPair.Timeout);
        var server = ServeAsync(pair.Receiver, TokenProof.CreateToken(), 4, cts.Token);

        var e = await Assert.ThrowsAsync<ChannelSetupException>(
            () => ChannelHandshake.ClientAsync(pair.Sender, TokenProof.CreateToken(), MigrationId, 2, 4, cts.Token).WaitAsync(LoopbackSocketPair.Timeout));

        var side = await server.WaitAsync(LoopbackSocketPair.Timeout);
        Assert.Equal(HelloStatus.BadProof, side.Status);
        Assert.Contains(MigrationId.ToString(), side.Error, StringComparison.Ordinal);
        Assert.Equal(2, e.ChannelIndex);
        Assert.Contains("channel 2", e.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(HelloStatus.BadProof), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_with_another_channel_count_gets_BadChannel()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        using var cts = new CancellationTokenSource(LoopbackSocketPair.Timeout);
        var token = TokenProof.CreateToken();
        var server = ServeAsync(pair.Receiver, token, 4, cts.Token);

        var e = await Assert.ThrowsAsync<ChannelSetupException>(
            () => ChannelHandshake.ClientAsync(pair.Sender, token, MigrationId, 1, 3, cts.Token).WaitAsync(LoopbackSocketPair.Timeout));

        var side = await server.WaitAsync(LoopbackSocketPair.Timeout);
        Assert.Equal(HelloStatus.BadChannel, side.Status);
        Assert.Contains("count 3", side.Error, StringComparison.Ordinal);
        Assert.Contains(nameof(HelloStatus.BadChannel), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_rejects_a_garbage_challenge()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        using var cts = new CancellationTokenSource(LoopbackSocketPair.Timeout);
        await pair.SendRawAsync(Enumerable.Repeat((byte)0xEE, ChannelChallenge.Size).ToArray());

        var e = await Assert.ThrowsAsync<ChannelSetupException>(
            () => ChannelHandshake.ClientAsync(pair.Receiver, TokenProof.CreateToken(), MigrationId, 0, 1, cts.Token).WaitAsync(LoopbackSocketPair.Timeout));
        Assert.Contains("bad challenge magic 0xEEEEEEEE", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_closing_before_the_ack_is_a_closed_channel_for_the_client()
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        using var cts = new CancellationTokenSource(LoopbackSocketPair.Timeout);
        var server = Task.Run(async () =>
        {
            await ChannelHandshake.ServerReadHelloAsync(pair.Receiver, cts.Token);
            pair.Receiver.Shutdown(SocketShutdown.Send);
        });

        var e = await Assert.ThrowsAsync<ChannelClosedException>(
            () => ChannelHandshake.ClientAsync(pair.Sender, TokenProof.CreateToken(), MigrationId, 0, 1, cts.Token).WaitAsync(LoopbackSocketPair.Timeout));
        await server.WaitAsync(LoopbackSocketPair.Timeout);
        Assert.Contains("hello ack", e.Message, StringComparison.Ordinal);
    }

    private static async Task<ServerHello> ServerReadsAsync(byte[] hello)
    {
        using var pair = await LoopbackSocketPair.CreateAsync();
        using var cts = new CancellationTokenSource(LoopbackSocketPair.Timeout);
        var server = ChannelHandshake.ServerReadHelloAsync(pair.Receiver, cts.Token);
        var challenge = new byte[ChannelChallenge.Size];
        await SocketIo.ReceiveExactlyAsync(pair.Sender, challenge, 0, "challenge", cts.Token).AsTask().WaitAsync(LoopbackSocketPair.Timeout);
        await pair.SendRawAsync(hello);
        return await server.WaitAsync(LoopbackSocketPair.Timeout);
    }

    [Fact]
    public async Task Server_reads_a_hello_of_another_version_as_VersionMismatch()
    {
        var hello = new byte[ChannelHello.Size];
        new ChannelHello(0, 1, MigrationId, default).WriteTo(hello);
        hello[4] = 2;
        var read = await ServerReadsAsync(hello);
        Assert.Equal(HelloStatus.VersionMismatch, read.Status);
        Assert.Contains("version 2", read.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_does_not_accept_a_garbage_hello()
    {
        var read = await ServerReadsAsync(Enumerable.Repeat((byte)0x41, ChannelHello.Size).ToArray());
        Assert.NotEqual(HelloStatus.Accepted, read.Status);
        Assert.Contains("bad hello magic 0x41414141", read.Error, StringComparison.Ordinal);
    }

    /// <summary>
    /// docs/protocol.md: "A malformed hello (truncated, bad magic, reserved bytes set) gets no ack at all", and
    /// ChannelHello.TryRead reports rejection 0 for it, which ChannelListener treats as "close without ack". But
    /// ServerReadHelloAsync maps rejection 0 to BadChannel, so the listener answers garbage with a BadChannel ack.
    /// </summary>
    [Fact]
    public async Task Server_reports_a_garbage_hello_as_malformed_so_that_no_ack_is_sent()
    {
        var read = await ServerReadsAsync(Enumerable.Repeat((byte)0x41, ChannelHello.Size).ToArray());
        Assert.Equal(0, (int)read.Status);
    }
}
