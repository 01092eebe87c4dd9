using Migration.Transport.Wire;
using Xunit;
using static Migration.Transport.Tests.Wire.WireTestData;

namespace Migration.Transport.Tests.Wire;

public class TokenProofTests
{
    private static readonly byte[] Token = Hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    private static readonly byte[] Nonce = Hex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF");
    private static readonly Guid MigrationId = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");

    /// <summary>HMAC-SHA256 computed independently (Python hmac) over A0..AF ‖ 33221100..EEFF ‖ 0300 ‖ 0800.</summary>
    private const string GoldenProof = "01EF89A7EDDCA89405FC48B4942888FC9B7048D633E538E1AAF5D5C5AB1B9CBB";

    private static byte[] Proof(byte[] token, byte[] nonce, Guid id, ushort index, ushort count)
    {
        var proof = new byte[32];
        TokenProof.Compute(token, nonce, id, index, count, proof);
        return proof;
    }

    [Fact]
    public void Compute_matches_independent_golden_value()
    {
        Assert.Equal(GoldenProof, ToHex(Proof(Token, Nonce, MigrationId, 3, 8)));
    }

    [Fact]
    public void Good_proof_is_accepted()
    {
        Assert.True(TokenProof.Verify(Token, Nonce, MigrationId, 3, 8, Hex(GoldenProof)));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(31, 7)]
    public void Flipping_one_token_bit_is_rejected(int index, int bit)
    {
        byte[] token = (byte[])Token.Clone();
        token[index] ^= (byte)(1 << bit);
        Assert.False(TokenProof.Verify(token, Nonce, MigrationId, 3, 8, Hex(GoldenProof)));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(15, 7)]
    public void Flipping_one_nonce_bit_is_rejected(int index, int bit)
    {
        byte[] nonce = (byte[])Nonce.Clone();
        nonce[index] ^= (byte)(1 << bit);
        Assert.False(TokenProof.Verify(Token, nonce, MigrationId, 3, 8, Hex(GoldenProof)));
    }

    [Fact]
    public void Flipping_one_migration_id_bit_is_rejected()
    {
        byte[] id = MigrationId.ToByteArray();
        id[15] ^= 1;
        Assert.False(TokenProof.Verify(Token, Nonce, new Guid(id), 3, 8, Hex(GoldenProof)));
    }

    [Fact]
    public void Other_channel_index_or_count_is_rejected()
    {
        Assert.False(TokenProof.Verify(Token, Nonce, MigrationId, 2, 8, Hex(GoldenProof)));
        Assert.False(TokenProof.Verify(Token, Nonce, MigrationId, 3, 9, Hex(GoldenProof)));
    }

    [Fact]
    public void Flipped_proof_bit_or_short_proof_is_rejected()
    {
        Assert.False(TokenProof.Verify(Token, Nonce, MigrationId, 3, 8, With(Hex(GoldenProof), 31, 0xBA)));
        Assert.False(TokenProof.Verify(Token, Nonce, MigrationId, 3, 8, Hex(GoldenProof).AsSpan(0, 31)));
    }

    [Fact]
    public void Wrong_token_or_nonce_length_throws()
    {
        Assert.Throws<ArgumentException>(() => Proof(new byte[31], Nonce, MigrationId, 0, 1));
        Assert.Throws<ArgumentException>(() => Proof(Token, new byte[15], MigrationId, 0, 1));
    }

    [Fact]
    public void Hello_authenticate_accepts_good_and_names_the_failure()
    {
        var challenge = new ChannelChallenge(ChallengeNonce.Read(Nonce));
        var hello = ChannelHello.Create(Token, challenge, MigrationId, 3, 8);
        Assert.Equal(Hex(GoldenProof), Write(b => hello.Proof.WriteTo(b), 32));
        Assert.Equal(HelloStatus.Accepted, hello.Authenticate(Token, challenge, 8, out var error));
        Assert.Equal(string.Empty, error);

        Assert.Equal(HelloStatus.BadChannel, hello.Authenticate(Token, challenge, 4, out error));
        Assert.Equal("channel 3: hello channel count 8, migration negotiated 4", error);

        byte[] otherToken = (byte[])Token.Clone();
        otherToken[5] ^= 0x10;
        Assert.Equal(HelloStatus.BadProof, hello.Authenticate(otherToken, challenge, 8, out error));
        Assert.Equal($"channel 3: hello proof does not match the token of migration {MigrationId}", error);

        var replayed = hello with { ChannelIndex = 4 };
        Assert.Equal(HelloStatus.BadProof, replayed.Authenticate(Token, challenge, 8, out _));
        Assert.Equal(HelloStatus.BadProof, hello.Authenticate(Token, ChannelChallenge.Create(), 8, out _));
    }
}
