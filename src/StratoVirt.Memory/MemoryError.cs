using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>A guest physical access that falls outside guest RAM.</summary>
public sealed class GuestMemoryException(ulong address, ulong length)
    : VmmException($"guest address range 0x{address:x}+0x{length:x} is outside guest memory")
{
    public ulong Address { get; } = address;
    public ulong Length { get; } = length;
}

/// <summary>Guest RAM could not be backed as asked (a missing -mem-path, no free huge pages, a size the huge page
/// size does not divide).</summary>
public sealed class RamBackingException(string message) : VmmException(message);
