namespace Migration.Transport.Channels;

/// <summary>
/// One piece of a gathered send: <see cref="Length"/> bytes at <see cref="Pointer"/>. Valid only while its memory is
/// pinned or unmanaged: guest RAM (mapped for the block's lifetime) or a buffer the caller holds fixed for the call.
/// </summary>
public readonly unsafe struct SendSegment(byte* pointer, int length)
{
    public byte* Pointer { get; } = pointer;

    public int Length { get; } = length;

    public ReadOnlySpan<byte> Span => new(Pointer, Length);
}
