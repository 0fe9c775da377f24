using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Unix and TCP stream sockets (QMP, chardevs, vsock), socket pairs, and fds passed with SCM_RIGHTS.</summary>
public static unsafe partial class Libc
{
    public const int AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
    public const int SOCK_STREAM = 1, SOCK_SEQPACKET = 5, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1, SO_REUSEADDR = 2, SCM_RIGHTS = 1;
    public const int IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;
    public const int MSG_CTRUNC = 0x8, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;
    public const int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, SockAddrUn* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, SockAddrUn* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "listen", SetLastError = true)]
    public static partial int Listen(int fd, int backlog);

    [LibraryImport(Lib, EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, void* addr, uint* addrlen, int flags);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, int* value, uint length);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, void* addr, uint* addrlen);

    [LibraryImport(Lib, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Lib, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Lib, EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);
}

/// <summary>struct sockaddr_un: a unix socket address (sun_path holds 108 bytes, NUL included).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SockAddrUn
{
    public const int PathCapacity = 108;
    public ushort Family;
    public fixed byte Path[PathCapacity];
}

/// <summary>struct sockaddr_in: an IPv4 address and port, both in network byte order.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SockAddrIn
{
    public ushort Family;
    public ushort Port;
    public fixed byte Address[4];
    public fixed byte Zero[8];
}

/// <summary>struct sockaddr_in6: an IPv6 address and port (network byte order).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SockAddrIn6
{
    public ushort Family;
    public ushort Port;
    public uint FlowInfo;
    public fixed byte Address[16];
    public uint ScopeId;
}

/// <summary>struct msghdr on x86_64 (recvmsg/sendmsg).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public Iovec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}

/// <summary>struct cmsghdr on x86_64: a 16-byte header, then the data (fds for SCM_RIGHTS).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CmsgHdr
{
    public const int Size = 16;
    public nuint Length;
    public int Level, Type;
}
