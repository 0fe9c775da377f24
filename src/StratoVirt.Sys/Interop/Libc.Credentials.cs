using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>User and group ids, supplementary groups and capability sets (ozone sheds them before exec).</summary>
public static unsafe partial class Libc
{
    public const int PR_SET_KEEPCAPS = 8, PR_CAPBSET_READ = 23, PR_CAPBSET_DROP = 24, PR_CAP_AMBIENT = 47,
        PR_CAP_AMBIENT_RAISE = 2;
    /// <summary>_LINUX_CAPABILITY_VERSION_3: two 32-bit words per capability set.</summary>
    public const uint CapabilityVersion3 = 0x20080522;

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEUid();

    [LibraryImport(Lib, EntryPoint = "setgroups", SetLastError = true)]
    public static partial int SetGroups(nuint size, uint* list);

    [LibraryImport(Lib, EntryPoint = "setresuid", SetLastError = true)]
    public static partial int SetResUid(uint ruid, uint euid, uint suid);

    [LibraryImport(Lib, EntryPoint = "setresgid", SetLastError = true)]
    public static partial int SetResGid(uint rgid, uint egid, uint sgid);

    [LibraryImport(Lib, EntryPoint = "capget", SetLastError = true)]
    public static partial int CapGet(CapHeader* header, CapData* data);

    [LibraryImport(Lib, EntryPoint = "capset", SetLastError = true)]
    public static partial int CapSet(CapHeader* header, CapData* data);
}

/// <summary>struct __user_cap_header_struct.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CapHeader
{
    public uint Version;
    public int Pid;
}

/// <summary>struct __user_cap_data_struct; version 3 uses two of them (capabilities 0-31 and 32-63).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CapData
{
    public uint Effective, Permitted, Inheritable;
}
