using Migration.Actors.Destination;
using Migration.Actors.Messages;
using Migration.Devices.Device;
using Migration.Devices.Guest;
using Xunit;

namespace Migration.Actors.Tests.Destination;

/// <summary>
/// The source's digests are checked against the migration and the guest before use
/// (IncomingVerification.SourceDigestsProblem): a vCPU position outside the guest's RAM used to throw in Resume, after
/// the ownership had moved to the destination, and the guest then ran nowhere.
/// </summary>
public sealed class SourceDigestsValidationTests : IDisposable
{
    private static readonly Guid Id = Guid.NewGuid();
    private static readonly string Digest = new('0', 32);

    // Two RAM blocks (1 GiB, then 1 MiB = 256 pages; mapped, never touched) and one device.
    private readonly GuestVm _guest = GuestFactory.CreateIncoming(
        new GuestSpec("vm", GuestSpec.MaxBlockBytes + (1L << 20), [new DeviceSpec("d0", DeviceKind.Vfio, 0, 64 * 1024, 0)]), prefault: false);

    public void Dispose() => _guest.Dispose();

    private static SourceDigests Good(int cpuBlock = 1, long cpuPage = 255) => new(Id, [Digest, Digest], [Digest], [1L], cpuBlock, cpuPage);

    [Fact]
    public void Digests_that_fit_the_migration_and_the_guest_pass()
    {
        Assert.Equal(2, _guest.Blocks.Count);
        Assert.Null(IncomingVerification.SourceDigestsProblem(Good(), Id, _guest));
        Assert.Null(IncomingVerification.SourceDigestsProblem(Good(0, 0), Id, _guest));
    }

    public static TheoryData<string, SourceDigests> Bad => new()
    {
        { "block 2, page 0); expected a block in 0..1", new SourceDigests(Id, [Digest, Digest], [Digest], [1L], 2, 0) },
        { "block -1, page 0); expected a block in 0..1 and a page within it (no such block)", new SourceDigests(Id, [Digest, Digest], [Digest], [1L], -1, 0) },
        { "block 1, page 256); expected a block in 0..1 and a page within it (256 pages)", new SourceDigests(Id, [Digest, Digest], [Digest], [1L], 1, 256) },
        { "page -1)", new SourceDigests(Id, [Digest, Digest], [Digest], [1L], 0, -1) },
        { "1 RAM digests, 1 device digests and 1 chunk counts; expected 2 RAM blocks and 1 devices", new SourceDigests(Id, [Digest], [Digest], [1L]) },
        { "2 RAM digests, 0 device digests and 1 chunk counts", new SourceDigests(Id, [Digest, Digest], [], [1L]) },
        { "(RAM missing, devices present, chunks per device present); expected all three", new SourceDigests(Id, null!, [Digest], [1L]) },
        { "chunks per device missing", new SourceDigests(Id, [Digest, Digest], [Digest], null!) },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void Digests_that_do_not_fit_are_refused_saying_what_arrived(string expected, SourceDigests digests)
    {
        Assert.Contains(expected, IncomingVerification.SourceDigestsProblem(digests, Id, _guest));
    }

    [Fact]
    public void Digests_of_another_migration_are_refused()
    {
        var other = Guid.NewGuid();
        Assert.Contains($"digests for migration {other}; expected {Id}", IncomingVerification.SourceDigestsProblem(Good() with { MigrationId = other }, Id, _guest));
    }
}
