using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>&lt;linux/vhost.h&gt;: the vhost-kernel ioctls (type 0xAF) on /dev/vhost-net and /dev/vhost-vsock; the
/// requests go through <see cref="Ioctl(int, ulong, void*)"/> and <see cref="Ioctl(int, ulong, ulong)"/>.</summary>
public static partial class Libc
{
    public const ulong VHOST_GET_FEATURES = 0x8008AF00, VHOST_SET_FEATURES = 0x4008AF00, VHOST_SET_OWNER = 0xAF01,
        VHOST_SET_MEM_TABLE = 0x4008AF03, VHOST_SET_VRING_NUM = 0x4008AF10, VHOST_SET_VRING_ADDR = 0x4028AF11,
        VHOST_SET_VRING_BASE = 0x4008AF12, VHOST_GET_VRING_BASE = 0xC008AF12, VHOST_SET_VRING_KICK = 0x4008AF20,
        VHOST_SET_VRING_CALL = 0x4008AF21, VHOST_SET_VRING_ERR = 0x4008AF22, VHOST_NET_SET_BACKEND = 0x4008AF30,
        VHOST_VSOCK_SET_GUEST_CID = 0x4008AF60, VHOST_VSOCK_SET_RUNNING = 0x4004AF61;
}

/// <summary>struct vhost_vring_state: a ring's index and a number (its size, or its next available index).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostVringState
{
    public uint Index;
    public uint Num;
}

/// <summary>struct vhost_vring_file: a ring's index and an fd (an eventfd, or a net backend); -1 unbinds.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostVringFile
{
    public uint Index;
    public int Fd;
}

/// <summary>struct vhost_vring_addr: where a ring's three areas are in the VMM's address space. Note the order:
/// descriptors, used, available.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostVringAddr
{
    public uint Index;
    public uint Flags;
    public ulong DescUserAddr;
    public ulong UsedUserAddr;
    public ulong AvailUserAddr;
    public ulong LogGuestAddr;
}

/// <summary>struct vhost_memory's header; <see cref="Count"/> vhost_memory_region entries follow it.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostMemoryHeader
{
    public uint Count;
    public uint Padding;
}

/// <summary>struct vhost_memory_region: one guest RAM region and where the VMM maps it.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostMemoryRegion
{
    public ulong GuestPhysAddr;
    public ulong MemorySize;
    public ulong UserspaceAddr;
    public ulong FlagsPadding;
}
