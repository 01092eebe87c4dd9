using Migration.Transport.Codecs;
using Migration.Transport.Wire;

namespace Migration.Transport.Tests.Wire;

/// <summary>Shared fixtures: hex helpers and a small migration (2 RAM blocks, 3 devices).</summary>
internal static class WireTestData
{
    /// <summary>Block 0: 1 GiB (262144 pages); block 1: 16 pages.</summary>
    public static readonly long[] Blocks = [262144, 16];

    /// <summary>Three devices with instances 10, 11, 12.</summary>
    public static readonly DeviceSlot[] Devices = [DeviceSlot.Of(10), DeviceSlot.Of(11), DeviceSlot.Of(12)];

    public static ReceiveLimits Limits(CodecId codec = CodecId.None, int maxPages = 128, int maxChunk = 1 << 20) =>
        new(codec, maxPages, maxChunk, Blocks, Devices);

    public static ReceiveContext Context(int channel, CodecId codec = CodecId.None, int maxPages = 128, int maxChunk = 1 << 20) =>
        Limits(codec, maxPages, maxChunk).ForChannel(channel);

    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

    public static byte[] Write(Action<byte[]> writer, int size)
    {
        var buffer = new byte[size];
        writer(buffer);
        return buffer;
    }

    /// <summary>Copy of <paramref name="bytes"/> with byte <paramref name="index"/> replaced.</summary>
    public static byte[] With(byte[] bytes, int index, byte value)
    {
        var copy = (byte[])bytes.Clone();
        copy[index] = value;
        return copy;
    }
}
