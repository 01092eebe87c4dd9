using Migration.Transport.Codecs;
using Xunit;

namespace Migration.Transport.Tests.Codecs;

public sealed class RamCodecRegistryTests
{
    [Fact]
    public void Default_registry_must_hold_none_zstd_lz4()
    {
        Assert.Equal([CodecId.None, CodecId.Zstd, CodecId.Lz4], RamCodecRegistry.Default.Ids);
        foreach (var id in RamCodecRegistry.Default.Ids)
        {
            var factory = RamCodecRegistry.Default.Get(id);
            Assert.Equal(id, factory.Id);
            Assert.Equal(RamCodecRegistry.Name(id), factory.Name);
            using var codec = factory.Create(0);
            Assert.Equal(id, codec.Id);
        }
    }

    [Fact]
    public void Registering_an_id_twice_must_throw_naming_the_id()
    {
        var registry = RamCodecRegistry.CreateDefault();
        var e = Assert.Throws<InvalidOperationException>(() => registry.Register(new ZstdCodecFactory()));
        Assert.Contains("2", e.Message);
        Assert.Contains("Zstd", e.Message);
        Assert.Contains("zstd", registry.Get(CodecId.Zstd).Name); // the first registration stays
    }

    [Fact]
    public void Registering_reserved_id_zero_must_throw()
    {
        var registry = new RamCodecRegistry();
        Assert.Throws<ArgumentException>(() => registry.Register(new BogusFactory()));
    }

    [Fact]
    public void Get_of_unknown_id_must_throw_listing_known_ids()
    {
        var registry = new RamCodecRegistry();
        registry.Register(new Lz4CodecFactory());
        var e = Assert.Throws<CodecException>(() => registry.Get(CodecId.Zstd));
        Assert.Contains("unknown RAM codec id 2", e.Message);
        Assert.Contains("3=lz4", e.Message);
        Assert.Throws<CodecException>(() => RamCodecRegistry.Default.Get((CodecId)0));
        Assert.Throws<CodecException>(() => RamCodecRegistry.Default.Get((CodecId)200));
        Assert.False(registry.IsRegistered(CodecId.None));
        Assert.True(registry.IsRegistered(CodecId.Lz4));
    }

    [Theory]
    [InlineData("none", CodecId.None)]
    [InlineData("NONE", CodecId.None)]
    [InlineData("zstd", CodecId.Zstd)]
    [InlineData("ZStd", CodecId.Zstd)]
    [InlineData(" lz4 ", CodecId.Lz4)]
    [InlineData("LZ4", CodecId.Lz4)]
    public void TryParse_must_accept_names_case_insensitively(string name, CodecId expected)
    {
        Assert.True(RamCodecRegistry.TryParse(name, out var id));
        Assert.Equal(expected, id);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("zlib")]
    [InlineData("lz")]
    [InlineData("2")]
    public void TryParse_must_reject_other_names(string? name)
    {
        Assert.False(RamCodecRegistry.TryParse(name, out var id));
        Assert.Equal(default, id);
    }

    [Fact]
    public void Name_must_round_trip_with_TryParse()
    {
        foreach (var id in Enum.GetValues<CodecId>())
        {
            Assert.True(RamCodecRegistry.TryParse(RamCodecRegistry.Name(id), out var parsed));
            Assert.Equal(id, parsed);
        }
        Assert.Equal("invalid(0)", RamCodecRegistry.Name(0));
    }

    private sealed class BogusFactory : IRamCodecFactory
    {
        public CodecId Id => 0;
        public string Name => "bogus";
        public IRamCodec Create(int level) => new NoneCodec();
    }
}
