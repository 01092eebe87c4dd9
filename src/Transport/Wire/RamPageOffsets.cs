using System.Buffers.Binary;

namespace Migration.Transport.Wire;

/// <summary>
/// The page-offset array of a RAM packet: (normalPageCount + zeroPageCount) u64 little-endian byte offsets
/// within the packet's RAM block, normal pages first, then zero pages.
/// <para>
/// Rules (protocol v1): every offset is a multiple of 4096 and below the block's size; each of the two lists is
/// <b>strictly ascending</b> (the source walks the dirty bitmap in order, so this costs it nothing), and no page
/// appears in both lists. Strict ascent makes duplicate detection O(n) without any set; the cross-list check
/// is a linear merge of two sorted lists.
/// </para>
/// </summary>
public static class RamPageOffsets
{
    /// <summary>Writes <paramref name="offsets"/> (normal then zero) as u64 LE. Does not validate.</summary>
    public static void Write(ReadOnlySpan<ulong> offsets, Span<byte> destination)
    {
        int need = offsets.Length * sizeof(ulong);
        if (destination.Length < need)
        {
            throw new ArgumentException($"need {need} bytes, got {destination.Length}", nameof(destination));
        }

        for (int i = 0; i < offsets.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[(i * sizeof(ulong))..], offsets[i]);
        }
    }

    /// <summary>
    /// Decodes the offset array of a packet whose <paramref name="header"/> was already validated with
    /// <see cref="RamPacketHeader.TryRead(ReadOnlySpan{byte}, in ReceiveContext, uint, out RamPacketHeader, out string)"/>
    /// into <paramref name="offsets"/> (length ≥ header.PageCount; the first PageCount entries are written) and
    /// validates every entry. Nothing may be written to guest RAM unless this returns true.
    /// </summary>
    public static bool TryRead(
        ReadOnlySpan<byte> source, in RamPacketHeader header, in ReceiveContext context, Span<ulong> offsets, out string error)
    {
        int channel = context.ChannelIndex;
        int count = header.PageCount;
        if (source.Length < header.OffsetArrayLength)
        {
            error = WireError.Truncated(channel, "RAM page-offset array", source.Length, header.OffsetArrayLength);
            return false;
        }

        if (offsets.Length < count)
        {
            throw new ArgumentException($"need room for {count} offsets, got {offsets.Length}", nameof(offsets));
        }

        for (int i = 0; i < count; i++)
        {
            offsets[i] = BinaryPrimitives.ReadUInt64LittleEndian(source[(i * sizeof(ulong))..]);
        }

        return Validate(offsets[..count], header, context, out error);
    }

    /// <summary>
    /// Validates decoded offsets (normal then zero, as counted by <paramref name="header"/>) against the block
    /// table: aligned, inside the block, strictly ascending within each list, no page in both lists.
    /// </summary>
    public static bool Validate(
        ReadOnlySpan<ulong> offsets, in RamPacketHeader header, in ReceiveContext context, out string error)
    {
        int channel = context.ChannelIndex;
        ReadOnlySpan<long> blocks = context.Limits.BlockPageCounts;
        if (header.BlockIndex >= blocks.Length)
        {
            error = WireError.At(channel, $"unknown RAM block index {header.BlockIndex} (migration has {blocks.Length} blocks)");
            return false;
        }

        if (offsets.Length != header.PageCount)
        {
            error = WireError.At(channel, $"{offsets.Length} page offsets, expected {header.PageCount}");
            return false;
        }

        long blockPages = blocks[header.BlockIndex];
        int normal = (int)header.NormalPageCount;
        ReadOnlySpan<ulong> normalList = offsets[..normal];
        ReadOnlySpan<ulong> zeroList = offsets[normal..];
        if (!ValidateList(normalList, "normal", 0, header.BlockIndex, blockPages, channel, out error)
            || !ValidateList(zeroList, "zero", normal, header.BlockIndex, blockPages, channel, out error))
        {
            return false;
        }

        // Both lists are strictly ascending: a linear merge finds a page present in both.
        int a = 0, b = 0;
        while (a < normalList.Length && b < zeroList.Length)
        {
            if (normalList[a] == zeroList[b])
            {
                error = WireError.At(channel, $"page offset 0x{normalList[a]:X} listed as both normal and zero page");
                return false;
            }

            if (normalList[a] < zeroList[b])
            {
                a++;
            }
            else
            {
                b++;
            }
        }

        error = string.Empty;
        return true;
    }

    private static bool ValidateList(
        ReadOnlySpan<ulong> list, string kind, int firstEntry, ushort block, long blockPages, int channel, out string error)
    {
        const ulong alignMask = WireConstants.PageSize - 1;
        for (int i = 0; i < list.Length; i++)
        {
            ulong offset = list[i];
            if ((offset & alignMask) != 0)
            {
                error = WireError.At(channel,
                    $"{kind} page offset 0x{offset:X} (entry {firstEntry + i}) not aligned to page size {WireConstants.PageSize}");
                return false;
            }

            if ((offset >> WireConstants.PageShift) >= (ulong)blockPages)
            {
                error = WireError.At(channel, $"page offset 0x{offset:X} beyond block {block} of {blockPages} pages");
                return false;
            }

            if (i > 0 && offset <= list[i - 1])
            {
                error = WireError.At(channel,
                    $"{kind} page offset 0x{offset:X} (entry {firstEntry + i}) not above previous 0x{list[i - 1]:X}: " +
                    "offsets must be strictly ascending without duplicates");
                return false;
            }
        }

        error = string.Empty;
        return true;
    }
}
