using System.Runtime.InteropServices;

[assembly: System.Runtime.CompilerServices.DisableRuntimeMarshalling]

namespace StratoVirt.Sys;

/// <summary>Every libc call the VMM makes, declared in one place.</summary>
public static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100,
        O_TRUNC = 0x200, O_APPEND = 0x400, O_NONBLOCK = 0x800, O_DIRECT = 0x4000, O_CLOEXEC = 0x80000;

    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public const int MADV_DONTNEED = 4, MADV_DONTDUMP = 16;

    public const int EINTR = 4, EAGAIN = 11, ENOENT = 2, EACCES = 13, EPERM = 1, EEXIST = 17, EINVAL = 22;

    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    public const uint EPOLLIN = 1, EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10;

    public const int SIGINT = 2, SIGTERM = 15, SIGHUP = 1;
    public const int SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
    public const int CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1;

    [LibraryImport(Lib, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buf, nuint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buf, nuint count);

    [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
    public static partial nint PRead(int fd, byte* buf, nuint count, long offset);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, ulong arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* arg);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(void* addr, nuint length, int prot);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(void* addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(void* addr, nuint length, int advice);

    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport(Lib, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport(Lib, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport(Lib, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, EpollEvent* events, int maxevents, int timeout);

    [LibraryImport(Lib, EntryPoint = "gettid")]
    public static partial int GetTid();

    [LibraryImport(Lib, EntryPoint = "getpid")]
    public static partial int GetPid();

    [LibraryImport(Lib, EntryPoint = "tgkill", SetLastError = true)]
    public static partial int TgKill(int tgid, int tid, int sig);

    [LibraryImport(Lib, EntryPoint = "sigaction", SetLastError = true)]
    public static partial int SigAction(int sig, KernelSigAction* act, KernelSigAction* oldact);

    [LibraryImport(Lib, EntryPoint = "pthread_sigmask")]
    public static partial int PthreadSigmask(int how, ulong* set, ulong* oldset);

    /// <summary>signalfd(3): <paramref name="mask"/> is a sigset_t (glibc's is 128 bytes).</summary>
    [LibraryImport(Lib, EntryPoint = "signalfd", SetLastError = true)]
    public static partial int SignalFd(int fd, ulong* mask, int flags);

    [LibraryImport(Lib, EntryPoint = "clock_gettime")]
    public static partial int ClockGetTime(int clock, TimeSpec* ts);

    [LibraryImport(Lib, EntryPoint = "tcgetattr", SetLastError = true)]
    public static partial int TcGetAttr(int fd, Termios* t);

    [LibraryImport(Lib, EntryPoint = "tcsetattr", SetLastError = true)]
    public static partial int TcSetAttr(int fd, int optionalActions, Termios* t);

    [LibraryImport(Lib, EntryPoint = "isatty")]
    public static partial int IsATty(int fd);

    [LibraryImport(Lib, EntryPoint = "fstat", SetLastError = true)]
    public static partial int FStat(int fd, Stat* st);

    [LibraryImport(Lib, EntryPoint = "sysinfo", SetLastError = true)]
    public static partial int SysInfo(SysInfoData* info);

    [LibraryImport(Lib, EntryPoint = "unlink", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Unlink(string path);

    [LibraryImport(Lib, EntryPoint = "_exit")]
    public static partial void Exit(int status);

    /// <summary>preadv2(2): readv at <paramref name="offset"/>, or at the current position (sockets, taps) when it
    /// is -1. Block and net I/O both use it (and <see cref="Pwritev2"/>), so the seccomp lists name two calls, not four.</summary>
    [LibraryImport(Lib, EntryPoint = "preadv2", SetLastError = true)]
    public static partial nint Preadv2(int fd, Iovec* iov, int iovcnt, long offset, int flags);

    [LibraryImport(Lib, EntryPoint = "pwritev2", SetLastError = true)]
    public static partial nint Pwritev2(int fd, Iovec* iov, int iovcnt, long offset, int flags);

    // ---- Unix sockets (QMP, chardevs, vsock) ----

    public const int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;

    [LibraryImport(Lib, EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);

    [LibraryImport(Lib, EntryPoint = "chmod", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chmod(string path, uint mode);

    // ---- QMP: TCP listeners and fds passed over unix sockets ----

    public const int AF_INET = 2, AF_INET6 = 10;
    public const int SOL_SOCKET = 1, SO_REUSEADDR = 2, SCM_RIGHTS = 1;
    public const int IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;
    public const int MSG_CTRUNC = 0x8, MSG_CMSG_CLOEXEC = 0x40000000;
    public const int EADDRNOTAVAIL = 99;

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, int* value, uint length);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, void* addr, uint* addrlen);

    [LibraryImport(Lib, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Lib, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* msg, int flags);

    // ---- virtio-blk ----

    public const int EISDIR = 21, ENOSYS = 38, EOPNOTSUPP = 95;
    /// <summary>ioctl: a block device's size in bytes (_IOR(0x12, 114, size_t)).</summary>
    public const ulong BLKGETSIZE64 = 0x80081272;
    public const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFBLK = 0x6000;
    /// <summary>Open-file-description record locks (fcntl F_OFD_*): owned by the open file, not the process.</summary>
    public const int F_OFD_SETLK = 37;
    public const short F_RDLCK = 0, F_WRLCK = 1;
    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;

    /// <summary>fcntl(2) with a struct flock argument (the lock commands).</summary>
    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlLock(int fd, int cmd, Flock* lk);

    [LibraryImport(Lib, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport(Lib, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FDataSync(int fd);

    // ---- virtio-net and tap ----

    // <linux/if_tun.h> ioctls ('T' type, _IOW/_IOR of a 4-byte argument) and flags.
    public const ulong TUNSETIFF = 0x400454ca, TUNGETIFF = 0x800454d2, TUNSETOFFLOAD = 0x400454d0,
        TUNSETVNETHDRSZ = 0x400454d8, TUNGETVNETHDRSZ = 0x800454d7;
    public const short IFF_TUN = 0x0001, IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    public const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_TSO_ECN = 0x08;
    public const int IFNAMSIZ = 16;
    public const ulong FIONBIO = 0x5421, FIOCLEX = 0x5451;
    public const int EIO = 5, EBADF = 9, EBUSY = 16, ENOTTY = 25, EBADFD = 77, ENODEV = 19;
    public const int AF_UNIX = 1, SOCK_SEQPACKET = 5, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int CLONE_NEWNET = 0x40000000;

    [LibraryImport(Lib, EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    /// <summary>unshare(2); namespaces such as CLONE_NEWNET apply to the calling thread only.</summary>
    [LibraryImport(Lib, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    // ---- chardevs and virtio-console ----

    public const int SOCK_STREAM = 1;
    public const int MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
    public const short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 0x10;
    public const int EPIPE = 32, ENAMETOOLONG = 36, EADDRINUSE = 98, ECONNRESET = 104, ECONNREFUSED = 111;

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, SockAddrUn* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, SockAddrUn* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "listen", SetLastError = true)]
    public static partial int Listen(int fd, int backlog);

    [LibraryImport(Lib, EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, void* addr, uint* addrlen, int flags);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint nfds, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "posix_openpt", SetLastError = true)]
    public static partial int PosixOpenPt(int flags);

    [LibraryImport(Lib, EntryPoint = "grantpt", SetLastError = true)]
    public static partial int GrantPt(int fd);

    [LibraryImport(Lib, EntryPoint = "unlockpt", SetLastError = true)]
    public static partial int UnlockPt(int fd);

    /// <summary>Returns 0 or an errno value (not -1): ptsname_r reports its error as the result.</summary>
    [LibraryImport(Lib, EntryPoint = "ptsname_r")]
    public static partial int PtsNameR(int fd, byte* buf, nuint buflen);

    [LibraryImport(Lib, EntryPoint = "cfmakeraw")]
    public static partial void CfMakeRaw(Termios* t);

    public const int O_NOFOLLOW = 0x20000, O_PATH = 0x200000;
    public const uint S_IFSOCK = 0xC000;

    // ---- virtio-balloon ----

    // ---- vsock ----

    public const uint EPOLLONESHOT = 1u << 30;

    // ---- -daemonize: spawning the daemon, pipes, pid files ----

    /// <summary>glibc's POSIX_SPAWN_SETSID: the child starts a new session (no controlling terminal).</summary>
    public const short POSIX_SPAWN_SETSID = 0x80;
    /// <summary>Room for glibc's posix_spawn_file_actions_t (80 bytes) and posix_spawnattr_t (336 bytes) on
    /// x86_64, with margin; both are opaque and only ever passed by pointer.</summary>
    public const int SpawnFileActionsSize = 128, SpawnAttrSize = 512;

    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Lib, EntryPoint = "dup2", SetLastError = true)]
    public static partial int Dup2(int oldFd, int newFd);

    [LibraryImport(Lib, EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    /// <summary>The posix_spawn family returns an errno value (0 on success) instead of setting errno.</summary>
    [LibraryImport(Lib, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int PosixSpawnFileActionsInit(void* fileActions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int PosixSpawnFileActionsDestroy(void* fileActions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen")]
    public static partial int PosixSpawnFileActionsAddOpen(void* fileActions, int fd, byte* path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int PosixSpawnFileActionsAddDup2(void* fileActions, int fd, int newFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_init")]
    public static partial int PosixSpawnAttrInit(void* attr);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int PosixSpawnAttrDestroy(void* attr);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int PosixSpawnAttrSetFlags(void* attr, short flags);

    // ---- seccomp ----

    public const int SYS_seccomp = 317, SECCOMP_SET_MODE_FILTER = 1;
    public const int SIGSYS = 31, SA_SIGINFO = 4;

    /// <summary>seccomp(2) through syscall(2); glibc's syscall is assembly that ignores the variadic-call
    /// register conventions, so a fixed-argument declaration is safe.</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long SeccompSyscall(long number, int operation, uint flags, SockFprog* program);

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial byte* StrError(int errnum);

    /// <summary>The C library's text for an errno value.</summary>
    public static string ErrorText(int errno)
    {
        // strerror returns a pointer to a static NUL-terminated string owned by libc.
        byte* s = StrError(errno);
        return s == null ? $"errno {errno}" : Marshal.PtrToStringUTF8((nint)s) ?? $"errno {errno}";
    }

    public static long MonotonicNanoseconds()
    {
        TimeSpec ts;
        ClockGetTime(CLOCK_MONOTONIC, &ts);
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct EpollEvent
{
    public uint Events;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
public struct TimeSpec
{
    public long Seconds;
    public long Nanoseconds;
}

/// <summary>glibc's struct sigaction on x86_64.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KernelSigAction
{
    public nint Handler;
    public ulong Mask0, Mask1, Mask2, Mask3, Mask4, Mask5, Mask6, Mask7,
        Mask8, Mask9, Mask10, Mask11, Mask12, Mask13, Mask14, Mask15;
    public int Flags;
    public nint Restorer;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct Termios
{
    public uint IFlag, OFlag, CFlag, LFlag;
    public byte Line;
    public fixed byte Cc[32];
    public uint ISpeed, OSpeed;
}

/// <summary>struct iovec: one buffer of a readv/writev-style call.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Iovec
{
    public nint Base;
    public nuint Length;
}

/// <summary>struct sysinfo on x86_64: only the fields the VMM reads are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
public struct SysInfoData
{
    [FieldOffset(32)] public ulong TotalRam;
    [FieldOffset(104)] public uint MemUnit;
}

/// <summary>struct stat on x86_64.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Stat
{
    public ulong Dev, Ino, NLink;
    public uint Mode, Uid, Gid, Pad0;
    public ulong RDev;
    public long Size, BlkSize, Blocks;
    public long ATime, ATimeNs, MTime, MTimeNs, CTime, CTimeNs;
    public fixed long Reserved[3];
}

/// <summary>struct ifreq as the tun ioctls use it: the interface name and the flags member of the union.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public unsafe struct IfReq
{
    [FieldOffset(0)] public fixed byte Name[16];
    [FieldOffset(16)] public short Flags;
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

/// <summary>struct pollfd.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct PollFd
{
    public int Fd;
    public short Events, REvents;
}

/// <summary>struct flock on x86_64 (fcntl record locks).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Flock
{
    public short Type, Whence;
    public long Start, Length;
    public int Pid;
}

// ---- ozone: mounts, namespaces, credentials, capabilities, process start ----

public static unsafe partial class Libc
{
    public const ulong MS_BIND = 0x1000, MS_MOVE = 0x2000, MS_REC = 0x4000, MS_PRIVATE = 0x40000, MS_SLAVE = 0x80000;
    public const int MNT_DETACH = 2;
    public const int CLONE_NEWNS = 0x20000, CLONE_NEWUTS = 0x04000000, CLONE_NEWIPC = 0x08000000, CLONE_NEWPID = 0x20000000;
    public const long SYS_pivot_root = 155, SYS_close_range = 436;
    public const uint CLOSE_RANGE_CLOEXEC = 4;
    public const int PR_SET_PDEATHSIG = 1, PR_SET_KEEPCAPS = 8, PR_SET_NAME = 15, PR_CAPBSET_READ = 23, PR_CAPBSET_DROP = 24,
        PR_SET_NO_NEW_PRIVS = 38, PR_CAP_AMBIENT = 47, PR_CAP_AMBIENT_RAISE = 2;
    public const uint S_IFCHR = 0x2000;
    public const int SIGKILL = 9, SIGQUIT = 3;
    public const int ESRCH = 3, ECHILD = 10, ENOTEMPTY = 39;
    /// <summary>_LINUX_CAPABILITY_VERSION_3: two 32-bit words per capability set.</summary>
    public const uint CapabilityVersion3 = 0x20080522;

    [LibraryImport(Lib, EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mount(string? source, string target, string? fsType, ulong flags, nint data);

    [LibraryImport(Lib, EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    /// <summary>syscall(2) for calls glibc does not wrap (pivot_root) or wraps only in newer versions (close_range).</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, nint a1, nint a2, nint a3);

    [LibraryImport(Lib, EntryPoint = "sethostname", SetLastError = true)]
    public static partial int SetHostName(byte* name, nuint length);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int nsType);

    [LibraryImport(Lib, EntryPoint = "mknod", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mknod(string path, uint mode, ulong dev);

    [LibraryImport(Lib, EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chown(string path, uint uid, uint gid);

    [LibraryImport(Lib, EntryPoint = "mkdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mkdir(string path, uint mode);

    [LibraryImport(Lib, EntryPoint = "rmdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Rmdir(string path);

    [LibraryImport(Lib, EntryPoint = "chdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chdir(string path);

    [LibraryImport(Lib, EntryPoint = "chroot", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chroot(string path);

    [LibraryImport(Lib, EntryPoint = "setgroups", SetLastError = true)]
    public static partial int SetGroups(nuint size, uint* list);

    [LibraryImport(Lib, EntryPoint = "setresuid", SetLastError = true)]
    public static partial int SetResUid(uint ruid, uint euid, uint suid);

    [LibraryImport(Lib, EntryPoint = "setresgid", SetLastError = true)]
    public static partial int SetResGid(uint rgid, uint egid, uint sgid);

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEUid();

    [LibraryImport(Lib, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [LibraryImport(Lib, EntryPoint = "capget", SetLastError = true)]
    public static partial int CapGet(CapHeader* header, CapData* data);

    [LibraryImport(Lib, EntryPoint = "capset", SetLastError = true)]
    public static partial int CapSet(CapHeader* header, CapData* data);

    [LibraryImport(Lib, EntryPoint = "execve", SetLastError = true)]
    public static partial int Execve(byte* path, byte** argv, byte** envp);

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int sig);

    /// <summary>makedev(3): the kernel's 64-bit device number from a major and minor.</summary>
    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfff) << 8) | (minor & 0xffu) | ((ulong)(minor & ~0xffu) << 12) | ((ulong)(major & ~0xfffu) << 32);
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

/// <summary>struct sock_fprog: a BPF program's length and instructions.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SockFprog
{
    public ushort Length;
    public void* Filter;
}
