using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Mappings (guest RAM, kvm_run, the SIGSYS page), advice on them, and the host's RAM size.</summary>
public static unsafe partial class Libc
{
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public const int MADV_DONTNEED = 4, MADV_DONTDUMP = 16;

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(void* addr, nuint length, int prot);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(void* addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(void* addr, nuint length, int advice);

    [LibraryImport(Lib, EntryPoint = "sysinfo", SetLastError = true)]
    public static partial int SysInfo(SysInfoData* info);

    /// <summary>The host's RAM in bytes, or 0 when sysinfo fails.</summary>
    public static ulong HostRamBytes()
    {
        SysInfoData info;
        // info is a local of this frame that sysinfo fills.
        return SysInfo(&info) == 0 ? info.TotalRam * Math.Max(info.MemUnit, 1u) : 0;
    }
}

/// <summary>struct sysinfo on x86_64: only the fields the VMM reads are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
public struct SysInfoData
{
    [FieldOffset(32)] public ulong TotalRam;
    [FieldOffset(104)] public uint MemUnit;
}

/// <summary>The loaded objects (the executable, libc, the loader, ...) and their program headers.</summary>
public static unsafe partial class Libc
{
    public const uint PT_LOAD = 1, PT_GNU_RELRO = 0x6474e552, PF_W = 2;

    [LibraryImport(Lib, EntryPoint = "dl_iterate_phdr")]
    public static partial int DlIteratePhdr(delegate* unmanaged<DlPhdrInfo*, nuint, void*, int> callback, void* data);
}

/// <summary>struct dl_phdr_info on x86_64 (the fields up to dlpi_phnum).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct DlPhdrInfo
{
    public ulong Address;
    public byte* Name;
    public ElfProgramHeader* Headers;
    public ushort HeaderCount;
}

/// <summary>Elf64_Phdr.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct ElfProgramHeader
{
    public uint Type;
    public uint Flags;
    public ulong Offset;
    public ulong VirtualAddress;
    public ulong PhysicalAddress;
    public ulong FileSize;
    public ulong MemorySize;
    public ulong Align;
}
