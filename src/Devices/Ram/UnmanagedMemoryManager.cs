using System.Buffers;

namespace Migration.Devices.Ram;

/// <summary>
/// A <see cref="MemoryManager{T}"/> over native memory it does not own (guest RAM pages), so that a
/// <see cref="Memory{T}"/> can be handed to async socket I/O without copying.
/// Ownership: the memory belongs to the <see cref="RamBlock"/> that created this manager; the Memory is valid
/// only until that block is disposed. Pin/Unpin are no-ops (native memory never moves).
/// </summary>
internal sealed unsafe class UnmanagedMemoryManager : MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    public UnmanagedMemoryManager(byte* pointer, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (pointer == null && length != 0)
            throw new ArgumentNullException(nameof(pointer), "null pointer with a non-zero length");
        _pointer = pointer;
        _length = length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        if ((uint)elementIndex > (uint)_length)
            throw new ArgumentOutOfRangeException(nameof(elementIndex), $"index {elementIndex} beyond length {_length}");
        return new MemoryHandle(_pointer + elementIndex);
    }

    public override void Unpin() { }

    /// <summary>Nothing to free: the owning RamBlock unmaps the memory.</summary>
    protected override void Dispose(bool disposing) { }
}
