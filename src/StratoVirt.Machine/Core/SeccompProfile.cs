using StratoVirt.Kvm;
using StratoVirt.Kvm.Arm64;
using StratoVirt.Sys;
using StratoVirt.Sys.Seccomp;
using static StratoVirt.Sys.Seccomp.SyscallRule;

namespace StratoVirt.Machine;

/// <summary>The kinds of thread the VMM runs, each with its own system call allow-list.</summary>
public enum ThreadKind
{
    /// <summary>The main event loop: QMP, console input, devices without an iothread, hotplug, and the ending.</summary>
    Main,
    /// <summary>A vCPU: KVM_RUN and the port and MMIO exits it dispatches.</summary>
    Vcpu,
    /// <summary>An -object iothread: the queues of the block and net devices that name it.</summary>
    IoThread,
    /// <summary>The .NET runtime's finalizer thread.</summary>
    Runtime,
}

/// <summary>
/// What each kind of thread may call once the guest runs, as data. Everything else (opening a VM, creating
/// threads, binding sockets) happens before the filters go on. Argument checks narrow the calls that can do
/// much more than the VMM needs: ioctl to the request numbers used after start, fcntl to record locks, futex to
/// private wait and wake, madvise to the advice the GC and the balloon give, and mmap and mprotect to mappings
/// without PROT_EXEC.
/// </summary>
public static class SeccompProfile
{
    private const uint FutexPrivate = 128, FutexClockRealtime = 256;
    private const uint FutexWait = 0, FutexWake = 1, FutexWaitBitset = 9, FutexWakeBitset = 10;
    private const uint MadvDontNeed = 4, MadvFree = 8, MadvDontDump = 16, MadvDoDump = 17;
    private const uint TcGets = 0x5401, TcSets = 0x5402;

    /// <summary>
    /// What the NativeAOT runtime itself calls, after start-up, on any thread that runs managed code, taken from
    /// its sources (the GC's OS layer gcenv.unix.cpp, the runtime's PAL, glibc's abort) and checked with strace
    /// under collections forced through the GC's knobs (see the README's Seccomp section):
    /// <list type="bullet">
    /// <item>Collections: commit is mprotect(RW) + madvise(DODUMP), decommit mmap(FIXED, PROT_NONE) +
    /// madvise(DONTDUMP); every collection checks the memory load: /proc/meminfo (openat, newfstatat, read,
    /// close), the address-space limit (prlimit64) and sysinfo (also the fallback where /proc is missing, as
    /// under ozone).</item>
    /// <item>Suspending the other threads: membarrier, then tgkill of the activation signal with getpid and
    /// rt_sigprocmask around it; the stopped thread's handler calls getpid and returns (rt_sigreturn).</item>
    /// <item>Locks spin (sched_yield, clock_nanosleep) and wait (futex: private wait, wake and the bitset forms,
    /// glibc adding CLOCK_REALTIME to untimed waits).</item>
    /// <item>The failure path (an unhandled exception, FailFast, out of memory): the message is written, then
    /// abort raises SIGABRT on the calling thread (gettid, getpid, tgkill, rt_sigprocmask), so such an ending
    /// shows its real cause instead of a seccomp report.</item>
    /// <item>The SIGSYS report: write and exit_group. exit ends a thread.</item>
    /// </list>
    /// The background GC thread (clone3 and friends) never exists: concurrent collection is off in the build.
    /// </summary>
    private static readonly SyscallRule[] RuntimeCalls =
    [
        AllowMasked("futex", 1, ~FutexClockRealtime,
            FutexPrivate | FutexWait, FutexPrivate | FutexWake, FutexPrivate | FutexWaitBitset, FutexPrivate | FutexWakeBitset),
        AllowMasked("mmap", 2, Libc.PROT_EXEC, 0),
        AllowMasked("mprotect", 2, Libc.PROT_EXEC, 0),
        Allow("munmap"),
        AllowIf("madvise", 2, MadvDontNeed, MadvFree, MadvDontDump, MadvDoDump),
        Allow("membarrier"),
        Allow("tgkill"),
        Allow("getpid"),
        Allow("gettid"),
        Allow("sched_yield"),
        Allow("clock_nanosleep"),
        Allow("clock_gettime"), // the vDSO answers it, except on hosts whose clocksource it cannot read
        AllowIf("openat", 2, Libc.O_RDONLY),
        Allow("newfstatat"),
        Allow("read"),
        Allow("close"),
        Allow("prlimit64"),
        Allow("sysinfo"),
        Allow("rt_sigprocmask"),
        Allow("rt_sigreturn"),
        Allow("write"),
        Allow("exit"),
        Allow("exit_group"),
    ];

    /// <summary>What stops a vhost-kernel device: its reset on a vCPU, or its failure (the kernel reported a bad
    /// ring) on the loop that serves its interrupts.</summary>
    private static readonly uint[] VhostStopRequests =
        [(uint)Libc.VHOST_VSOCK_SET_RUNNING, (uint)Libc.VHOST_NET_SET_BACKEND, (uint)Libc.VHOST_GET_VRING_BASE];

    /// <summary>A device's interrupt line, raised by whichever thread serves its queues when it has no irqfd (a
    /// q35 function's INTA# held as a level). MSI-X messages are x86's (<see cref="X86VcpuCalls"/>).</summary>
    private static readonly uint[] InterruptRequests = [(uint)KvmIoctls.IrqLine];

    /// <summary>The serial port's transmit writes queued in KVM's coalesced ring or not: added on a vCPU's status
    /// poll, removed on a vCPU whose register write disallows it, or by the main loop's tick or a reset.</summary>
    private static readonly uint[] SerialQueueingRequests =
        [(uint)KvmIoctls.RegisterCoalescedMmio, (uint)KvmIoctls.UnregisterCoalescedMmio];

    private static readonly SyscallRule[] VcpuCalls =
    [
        AllowIf("ioctl", 1, [(uint)KvmIoctls.Run, .. InterruptRequests, .. SerialQueueingRequests,
            (uint)KvmIoctls.Ioeventfd, // a virtio-pci BAR the guest maps or moves takes its queue notifications along
            // a vhost backend's call eventfd follows its MSI-X vector as the guest programs, masks and unmasks it
            (uint)KvmIoctls.Irqfd, (uint)KvmIoctls.SetGsiRouting,
            (uint)Libc.TUNSETOFFLOAD, // virtio-net's activation passes the features the guest took to the tap
            // a vhost-kernel device's activation hands its rings to the kernel; its reset takes them back
            (uint)Libc.VHOST_SET_FEATURES, (uint)Libc.VHOST_SET_MEM_TABLE, (uint)Libc.VHOST_SET_VRING_NUM,
            (uint)Libc.VHOST_SET_VRING_BASE, (uint)Libc.VHOST_SET_VRING_ADDR, (uint)Libc.VHOST_SET_VRING_KICK,
            (uint)Libc.VHOST_SET_VRING_CALL, (uint)Libc.VHOST_SET_VRING_ERR, .. VhostStopRequests]),
        Allow("epoll_ctl"), // a device the guest activates or resets adds or removes its queue fds; serial input resumes
        Allow("poll"), // the serial port's output waiting for room in its chardev
        Allow("sendmsg"), // the serial port's output to a socket chardev; vhost-user requests on DRIVER_OK and reset
        Allow("recvmsg"), // vhost-user replies, awaited while the driver starts or resets the device
        Allow("pwritev2"), // a flash program or erase the firmware makes, written through to the VARS file
    ];

    /// <summary>Block and net queues: vectored I/O at an offset (disks) or at none (taps), flush, discard; a
    /// vhost-kernel device stopping itself.</summary>
    private static readonly SyscallRule[] DeviceIoCalls =
    [
        AllowIf("ioctl", 1, [.. VhostStopRequests, .. InterruptRequests]),
        Allow("epoll_wait"),
        Allow("epoll_ctl"),
        Allow("preadv2"),
        Allow("pwritev2"),
        Allow("fdatasync"),
        Allow("fallocate"),
    ];

    private static readonly SyscallRule[] MainCalls =
    [
        .. DeviceIoCalls,
        AllowIf("ioctl", 1, [
            (uint)KvmIoctls.IrqLine, // interrupts
            TcGets, TcSets, // the terminal, restored at the end
            (uint)Libc.TUNSETIFF, (uint)Libc.TUNGETIFF, (uint)Libc.TUNSETOFFLOAD, (uint)Libc.TUNSETVNETHDRSZ,
            (uint)Libc.TUNGETVNETHDRSZ, (uint)Libc.FIONBIO, (uint)Libc.FIOCLEX, // netdev_add
            (uint)Libc.BLKGETSIZE64, // blockdev-add of a block device
            // a device's KVM bindings: queue notifications and backend call eventfds, made and undone
            (uint)KvmIoctls.Ioeventfd, (uint)KvmIoctls.Irqfd, (uint)KvmIoctls.SetGsiRouting,
            .. SerialQueueingRequests]),
        AllowIf("fcntl", 1, Libc.F_OFD_SETLK), // blockdev-add locks its image
        Allow("openat"), // blockdev-add, netdev_add
        Allow("eventfd2"), // q35 device_add: the new function's queue notification eventfds
        Allow("poll"), // chardev output waiting for room; the last QMP reply
        Allow("accept4"),
        Allow("recvmsg"),
        Allow("sendmsg"),
        // vsock: a guest connection reaches the host's unix socket; q35 device_add of vhost-user-blk-pci connects to
        // its backend (then sendmsg/recvmsg/poll for the handshake)
        Allow("socket"),
        Allow("connect"),
        Allow("shutdown"),
        Allow("unlink"), // the QMP socket and pid file at the end
    ];

    /// <summary>What only x86_64 needs: the vCPU's registers named in an error, a q35 function's MSI-X messages
    /// (also sent from a vCPU when the guest unmasks a pending vector), and on the main loop kvmclock across
    /// stop/cont, migrate's state and a q35 reset's.</summary>
    private static readonly SyscallRule[] X86VcpuCalls =
        [AllowIf("ioctl", 1, (uint)KvmIoctls.GetRegs, (uint)KvmIoctls.SignalMsi)];

    private static readonly SyscallRule[] X86DeviceIoCalls = [AllowIf("ioctl", 1, (uint)KvmIoctls.SignalMsi)];

    private static readonly SyscallRule[] X86MainCalls =
    [
        .. X86DeviceIoCalls,
        AllowIf("ioctl", 1, [
            (uint)KvmIoctls.GetClock, (uint)KvmIoctls.SetClock, // stop/cont
            // migrate: the paused vCPUs' and the VM's state
            (uint)KvmIoctls.GetRegs, (uint)KvmIoctls.GetSregs, (uint)KvmIoctls.GetFpu, (uint)KvmIoctls.GetXsave,
            (uint)KvmIoctls.GetXsave2, (uint)KvmIoctls.GetXcrs, (uint)KvmIoctls.GetMsrs, (uint)KvmIoctls.GetLapic,
            (uint)KvmIoctls.GetVcpuEvents, (uint)KvmIoctls.GetDebugRegs, (uint)KvmIoctls.GetMpState,
            (uint)KvmIoctls.GetIrqchip, (uint)KvmIoctls.GetPit2,
            // a q35 reset: the vCPUs' and the interrupt controllers' power-on state
            (uint)KvmIoctls.SetRegs, (uint)KvmIoctls.SetSregs, (uint)KvmIoctls.SetFpu, (uint)KvmIoctls.SetXsave,
            (uint)KvmIoctls.SetXcrs, (uint)KvmIoctls.SetMsrs, (uint)KvmIoctls.SetLapic, (uint)KvmIoctls.SetVcpuEvents,
            (uint)KvmIoctls.SetDebugRegs, (uint)KvmIoctls.SetMpState, (uint)KvmIoctls.SetIrqchip, (uint)KvmIoctls.SetPit2]),
    ];

    /// <summary>What only aarch64 needs: the vCPU's program counter named in an error.</summary>
    private static readonly SyscallRule[] ArmVcpuCalls = [AllowIf("ioctl", 1, (uint)ArmIoctls.GetOneReg)];

    /// <summary>aarch64 has only the kernel's generic calls: glibc's poll, epoll_wait and unlink make ppoll,
    /// epoll_pwait and unlinkat there.</summary>
    private static readonly Dictionary<string, string> GenericForms = new(StringComparer.Ordinal)
    {
        ["poll"] = "ppoll",
        ["epoll_wait"] = "epoll_pwait",
        ["unlink"] = "unlinkat",
    };

    /// <summary>The filter for one kind of thread, for <paramref name="abi"/> (default: this process's). Without
    /// irqfd and ioeventfd a vCPU runs device queues itself and an iothread raises interrupts with KVM_IRQ_LINE.</summary>
    public static SeccompFilter For(ThreadKind kind, bool irqfdAndIoeventfd = true, SyscallAbi? abi = null)
    {
        abi ??= SyscallAbi.Host;
        int index = ((abi == SyscallAbi.Aarch64 ? 4 : 0) + (int)kind) * 2 + (irqfdAndIoeventfd ? 1 : 0);
        return Built[index] ??= Build(kind, irqfdAndIoeventfd, abi);
    }

    /// <summary>Each filter is built once, however often the tests and the ahead-of-time compiler ask for it (two
    /// threads racing build equal ones); the VMM installs <see cref="SeccompPrograms"/> instead.</summary>
    private static readonly SeccompFilter?[] Built = new SeccompFilter?[16];

    private static SeccompFilter Build(ThreadKind kind, bool irqfdAndIoeventfd, SyscallAbi abi)
    {
        bool x86 = abi == SyscallAbi.X86_64;
        SyscallRule[] vcpu = [.. VcpuCalls, .. x86 ? X86VcpuCalls : ArmVcpuCalls];
        SyscallRule[] main = [.. MainCalls, .. x86 ? X86MainCalls : []];
        SyscallRule[][] lists = kind switch
        {
            ThreadKind.Main => [RuntimeCalls, main],
            ThreadKind.Vcpu when irqfdAndIoeventfd => [RuntimeCalls, vcpu],
            ThreadKind.Vcpu => [RuntimeCalls, main, vcpu],
            ThreadKind.IoThread => [RuntimeCalls, DeviceIoCalls, x86 ? X86DeviceIoCalls : []],
            ThreadKind.Runtime => [RuntimeCalls],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return new(Merge(lists, abi), abi);
    }

    /// <summary><paramref name="rule"/> under the name <paramref name="abi"/> gives its call.</summary>
    private static SyscallRule InAbi(SyscallRule rule, SyscallAbi abi) =>
        abi.Has(rule.Name) || !GenericForms.TryGetValue(rule.Name, out var generic) ? rule : rule with { Name = generic };

    /// <summary>Every kind of thread.</summary>
    public static readonly ThreadKind[] Kinds = [ThreadKind.Main, ThreadKind.Vcpu, ThreadKind.IoThread, ThreadKind.Runtime];

    /// <summary>The distinct calls any thread of the process may make.</summary>
    public static IReadOnlySet<string> ProcessWide(bool irqfdAndIoeventfd = true, SyscallAbi? abi = null)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var kind in Kinds) names.UnionWith(For(kind, irqfdAndIoeventfd, abi).AllowedNames);
        return names;
    }

    /// <summary>Joins lists, each rule under its name in <paramref name="abi"/>; for a call in more than one, the
    /// unconditional rule wins, and two checks of the same argument allow the values of both.</summary>
    private static IEnumerable<SyscallRule> Merge(SyscallRule[][] lists, SyscallAbi abi)
    {
        var merged = new Dictionary<string, SyscallRule>(StringComparer.Ordinal);
        foreach (var list in lists)
        {
            foreach (var listed in list)
            {
                var rule = InAbi(listed, abi);
                if (!merged.TryGetValue(rule.Name, out var known)) merged[rule.Name] = rule;
                else if (known.Arg < 0 || rule.Arg < 0) merged[rule.Name] = Allow(rule.Name);
                else if (known.Arg == rule.Arg && known.Mask == rule.Mask)
                {
                    var values = new List<uint>(known.Values!);
                    int knownCount = values.Count;
                    foreach (uint v in rule.Values!)
                        if (values.IndexOf(v, 0, knownCount) < 0) values.Add(v);
                    merged[rule.Name] = known with { Values = values };
                }
                else throw new ArgumentException($"{rule.Name}: two lists check different arguments");
            }
        }
        return merged.Values;
    }
}
