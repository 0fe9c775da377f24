using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Mappings (guest RAM, kvm_run, the SIGSYS page), advice on them, and the host's RAM size.</summary>
public static unsafe partial class Libc
{
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public const int MADV_DONTNEED = 4, MADV_DONTDUMP = 16;
    /// <summary>Fault in every page of a range writable, as a write would (Linux 5.14); EINVAL on older kernels.</summary>
    public const int MADV_POPULATE_WRITE = 23;

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(void* addr, nuint length, int prot);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(void* addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(void* addr, nuint length, int advice);

    [LibraryImport(Lib, EntryPoint = "mincore", SetLastError = true)]
    public static partial int Mincore(void* addr, nuint length, byte* vec);

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

/// <summary>Files that back guest RAM: memfds, their seals, their size and the file system they live on.</summary>
public static unsafe partial class Libc
{
    public const uint MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
    public const int F_ADD_SEALS = 1033, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4;
    /// <summary>statfs f_type of hugetlbfs.</summary>
    public const long HUGETLBFS_MAGIC = 0x958458f6;

    [LibraryImport(Lib, EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int MemfdCreate(string name, uint flags);

    [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    /// <summary>fcntl(2) with an int argument (F_ADD_SEALS).</summary>
    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlInt(int fd, int cmd, int arg);

    [LibraryImport(Lib, EntryPoint = "fstatfs", SetLastError = true)]
    public static partial int FStatFs(int fd, StatFs* buf);
}

/// <summary>struct statfs on x86_64: only the fields the VMM reads are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 120)]
public struct StatFs
{
    [FieldOffset(0)] public long Type;
    [FieldOffset(8)] public long BlockSize;
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
