using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Transport.Tests.Codecs;

public sealed class RamCodecTests
{
    public static TheoryData<CodecId, TestPages.Kind, int> RoundTripCases()
    {
        var data = new TheoryData<CodecId, TestPages.Kind, int>();
        foreach (var id in new[] { CodecId.None, CodecId.Zstd, CodecId.Lz4 })
            foreach (var kind in Enum.GetValues<TestPages.Kind>())
                foreach (var pages in new[] { 1, 7, 128 })
                    data.Add(id, kind, pages);
        return data;
    }

    public static TheoryData<CodecId> AllCodecs() => [CodecId.None, CodecId.Zstd, CodecId.Lz4];
    public static TheoryData<CodecId> RealCodecs() => [CodecId.Zstd, CodecId.Lz4];

    private static IRamCodec Create(CodecId id, int level = 0) => RamCodecRegistry.Default.Create(id, level);

    private static byte[] CompressToArray(IRamCodec codec, byte[] input)
    {
        var buffer = new byte[codec.MaxCompressedLength(input.Length)];
        var n = codec.Compress(input, buffer);
        Assert.InRange(n, 0, buffer.Length);
        return buffer[..n];
    }

    [Theory]
    [MemberData(nameof(RoundTripCases))]
    public void Codec_must_round_trip_pages(CodecId id, TestPages.Kind kind, int pageCount)
    {
        using var sender = Create(id);
        using var receiver = Create(id);
        Assert.Equal(id, sender.Id);
        var input = TestPages.Make(kind, pageCount);

        // Two packets through the same instances: contexts are reused between calls.
        for (var round = 0; round < 2; round++)
        {
            var compressed = CompressToArray(sender, input);
            var output = new byte[input.Length];
            receiver.Decompress(compressed, output);
            Assert.Equal(input, output);
            if (id != CodecId.None && kind == TestPages.Kind.Zero)
                Assert.True(compressed.Length < input.Length / 50, $"{id}: {compressed.Length} bytes for {input.Length} zero bytes");
        }
    }

    [Theory]
    [InlineData(CodecId.Zstd, -5)]
    [InlineData(CodecId.Zstd, 1)]
    [InlineData(CodecId.Zstd, 19)]
    [InlineData(CodecId.Lz4, 0)]
    [InlineData(CodecId.Lz4, 9)]
    [InlineData(CodecId.Lz4, 12)]
    public void Codec_must_round_trip_at_other_levels(CodecId id, int level)
    {
        using var codec = Create(id, level);
        var input = TestPages.Make(TestPages.Kind.Mixed, 7);
        var output = new byte[input.Length];
        codec.Decompress(CompressToArray(codec, input), output);
        Assert.Equal(input, output);
    }

    [Theory]
    [InlineData(CodecId.Zstd, 23)]
    [InlineData(CodecId.Lz4, -1)]
    [InlineData(CodecId.Lz4, 13)]
    public void Factory_must_reject_out_of_range_levels(CodecId id, int level) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(id, level));

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Decompress_must_reject_wrong_expected_size(CodecId id)
    {
        using var codec = Create(id);
        var input = TestPages.Make(TestPages.Kind.Mixed, 7);
        var compressed = CompressToArray(codec, input);
        foreach (var expected in new[] { input.Length - 4096, input.Length - 1, input.Length + 1, input.Length + 4096, 0 })
        {
            var e = Assert.Throws<CodecException>(() => codec.Decompress(compressed, new byte[expected]));
            Assert.Contains(expected.ToString(), e.Message);
        }
        // The instance is still usable after a failure.
        var output = new byte[input.Length];
        codec.Decompress(compressed, output);
        Assert.Equal(input, output);
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Decompress_must_reject_every_truncation(CodecId id)
    {
        using var codec = Create(id);
        var input = TestPages.Make(TestPages.Kind.Mixed, 7);
        var compressed = CompressToArray(codec, input);
        var step = Math.Max(1, compressed.Length / 300);
        for (var len = 0; len < compressed.Length; len += len < 64 || len > compressed.Length - 64 ? 1 : step)
        {
            var truncated = compressed[..len];
            Assert.Throws<CodecException>(() => codec.Decompress(truncated, new byte[input.Length]));
        }
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Decompress_must_reject_garbage(CodecId id)
    {
        using var codec = Create(id);
        var rng = new Random(7);
        for (var i = 0; i < 50; i++)
        {
            var garbage = new byte[rng.Next(1, 2000)];
            rng.NextBytes(garbage);
            if (id == CodecId.Lz4) garbage[0] = 0xFF; // token claiming 15+ literals, then an extension byte run
            Assert.Throws<CodecException>(() => codec.Decompress(garbage, new byte[4096]));
        }
        var e = Assert.Throws<CodecException>(() => codec.Decompress(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, new byte[4096]));
        Assert.Contains("4096", e.Message);
    }

    /// <summary>
    /// Block formats without checksums may decode a corrupted payload to other bytes of the right size; what
    /// must never happen is another exception type, or a write beyond the destination.
    /// </summary>
    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Decompress_of_corrupted_input_must_throw_CodecException_or_stay_within_destination(CodecId id)
    {
        using var codec = Create(id);
        var input = TestPages.Make(TestPages.Kind.Mixed, 7);
        var compressed = CompressToArray(codec, input);
        const int guard = 4096;
        var buffer = new byte[input.Length + guard];
        var rejected = 0;
        var step = Math.Max(1, compressed.Length / 400);
        foreach (var value in new byte[] { 0x00, 0x01, 0x80, 0xFF })
        {
            for (var pos = 0; pos < compressed.Length; pos += step)
            {
                var corrupted = (byte[])compressed.Clone();
                corrupted[pos] ^= value == 0 ? (byte)0x55 : value;
                buffer.AsSpan(input.Length).Fill(0xCC);
                try { codec.Decompress(corrupted, buffer.AsSpan(0, input.Length)); }
                catch (CodecException) { rejected++; }
                Assert.True(buffer.AsSpan(input.Length).IndexOfAnyExcept((byte)0xCC) < 0, $"{id}: wrote beyond destination (flip at {pos})");
            }
        }
        Assert.True(rejected > 0, $"{id}: no corruption was detected at all");
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Compress_must_report_a_too_small_destination(CodecId id)
    {
        using var codec = Create(id);
        var input = TestPages.Make(TestPages.Kind.Random, 2);
        Assert.Throws<CodecException>(() => codec.Compress(input, new byte[100]));
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Empty_input_must_round_trip_to_nothing(CodecId id)
    {
        using var codec = Create(id);
        Assert.Equal(0, codec.Compress(ReadOnlySpan<byte>.Empty, new byte[64]));
        codec.Decompress(ReadOnlySpan<byte>.Empty, Span<byte>.Empty);
        Assert.Throws<CodecException>(() => codec.Decompress(ReadOnlySpan<byte>.Empty, new byte[4096]));
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Steady_state_must_not_allocate(CodecId id)
    {
        using var codec = Create(id);
        var input = TestPages.Make(TestPages.Kind.Mixed, 128);
        var compressed = new byte[codec.MaxCompressedLength(input.Length)];
        var output = new byte[input.Length];
        var n = 0;
        for (var i = 0; i < 100; i++)
        {
            // Warm up: contexts are created lazily, and the JIT's tier-up happens in the first calls.
            n = codec.Compress(input, compressed);
            codec.Decompress(compressed.AsSpan(0, n), output);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 20; i++)
        {
            n = codec.Compress(input, compressed);
            codec.Decompress(compressed.AsSpan(0, n), output);
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(input, output);
    }

    [Fact]
    public void Zstd_must_throw_after_dispose()
    {
        var codec = Create(CodecId.Zstd);
        codec.Dispose();
        codec.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => codec.Compress(new byte[4096], new byte[8192]));
    }
}
