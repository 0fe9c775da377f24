using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>&lt;linux/if_tun.h&gt;: the tap device's ioctls ('T' type, _IOW/_IOR of a 4-byte argument) and flags;
/// the requests go through <see cref="Ioctl(int, ulong, void*)"/>.</summary>
public static partial class Libc
{
    public const ulong TUNSETIFF = 0x400454ca, TUNGETIFF = 0x800454d2, TUNSETOFFLOAD = 0x400454d0,
        TUNSETVNETHDRSZ = 0x400454d8, TUNGETVNETHDRSZ = 0x800454d7;
    public const short IFF_TUN = 0x0001, IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    public const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_TSO_ECN = 0x08;
    public const int IFNAMSIZ = 16;
}

/// <summary>struct ifreq as the tun ioctls use it: the interface name and the flags member of the union.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public unsafe struct IfReq
{
    [FieldOffset(0)] public fixed byte Name[16];
    [FieldOffset(16)] public short Flags;
}
