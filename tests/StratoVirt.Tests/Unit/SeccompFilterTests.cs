using System.Runtime.CompilerServices;
using StratoVirt.Kvm;
using StratoVirt.Machine;
using StratoVirt.Sys;
using StratoVirt.Sys.Seccomp;

namespace StratoVirt.Tests.Unit;

[Trait("Level", "Unit")]
public sealed class SeccompFilterTests
{
    /// <summary>The kernel's view of one call (struct seccomp_data).</summary>
    internal static byte[] Data(string name, uint arch = SyscallAbi.AuditArchX86_64, params ulong[] args) =>
        Data((arch == SyscallAbi.AuditArchAarch64 ? SyscallAbi.Aarch64 : SyscallAbi.X86_64).Number(name), arch, args);

    private static byte[] Data(int nr, uint arch, params ulong[] args)
    {
        var data = new byte[64];
        BitConverter.TryWriteBytes(data.AsSpan(0), nr);
        BitConverter.TryWriteBytes(data.AsSpan(4), arch);
        for (int i = 0; i < args.Length; i++) BitConverter.TryWriteBytes(data.AsSpan(16 + 8 * i), args[i]);
        return data;
    }

    /// <summary>A classic-BPF interpreter for the instructions the compiler emits (a test double of the kernel's).</summary>
    internal static uint Run(BpfInstruction[] program, byte[] data)
    {
        uint a = 0;
        for (int pc = 0; pc < program.Length; pc++)
        {
            var i = program[pc];
            switch (i.Code)
            {
                case SeccompFilter.LdWAbs: a = BitConverter.ToUInt32(data, (int)i.K); break;
                case SeccompFilter.AluAndK: a &= i.K; break;
                case SeccompFilter.JmpJeqK: pc += a == i.K ? i.JumpTrue : i.JumpFalse; break;
                case SeccompFilter.JmpJgeK: pc += a >= i.K ? i.JumpTrue : i.JumpFalse; break;
                case SeccompFilter.RetK: return i.K;
                default: throw new InvalidOperationException($"unexpected BPF code {i.Code:x}");
            }
        }
        throw new InvalidOperationException("the program ran off its end");
    }

    private static readonly SyscallRule[] Rules =
    [
        SyscallRule.Allow("read"),
        SyscallRule.AllowIf("ioctl", 1, 0xAE80 /* KVM_RUN */, 0xC008AE67),
        SyscallRule.AllowMasked("mmap", 2, 4 /* PROT_EXEC */, 0),
        SyscallRule.AllowIf("futex", 1, 128, 129),
        SyscallRule.Allow("exit_group"),
    ];

    private static readonly SeccompFilter Filter = new(Rules, SyscallAbi.X86_64);

    private static uint Verdict(byte[] data) => Run(Filter.Compile(SeccompFilter.RetTrap), data);

    [Fact]
    public void InstructionHasTheKernelsLayout() => Assert.Equal(8, Unsafe.SizeOf<BpfInstruction>());

    [Fact]
    public void ListedCallsPassAndOthersTrap()
    {
        Assert.Equal(SeccompFilter.RetAllow, Verdict(Data("read")));
        Assert.Equal(SeccompFilter.RetAllow, Verdict(Data("exit_group")));
        Assert.Equal(SeccompFilter.RetTrap, Verdict(Data("write")));
        Assert.Equal(SeccompFilter.RetTrap, Verdict(Data("execve")));
    }

    [Fact]
    public void ArgumentValuesAreChecked()
    {
        Assert.Equal(SeccompFilter.RetAllow, Verdict(Data("ioctl", args: [5, 0xAE80])));
        Assert.Equal(SeccompFilter.RetAllow, Verdict(Data("ioctl", args: [5, 0xC008AE67])));
        Assert.Equal(SeccompFilter.RetTrap, Verdict(Data("ioctl", args: [5, 0x5401 /* TCGETS */])));
        // Upper bits set make it a different request as far as the filter is concerned.
        Assert.Equal(SeccompFilter.RetTrap, Verdict(Data("ioctl", args: [5, 0x1_0000_AE80])));
        Assert.Equal(SeccompFilter.RetAllow, Verdict(Data("futex", args: [0, 129])));
        Assert.Equal(SeccompFilter.RetTrap, Verdict(Data("futex", args: [0, 0 /* shared FUTEX_WAIT */])));
    }

    [Fact]
    public void MaskedArgumentRefusesExecutableMappings()
    {
        Assert.Equal(SeccompFilter.RetAllow, Verdict(Data("mmap", args: [0, 4096, 3 /* RW */, 0x22])));
        Assert.Equal(SeccompFilter.RetTrap, Verdict(Data("mmap", args: [0, 4096, 5 /* R|X */, 0x22])));
    }

    [Fact]
    public void OtherArchitecturesAndX32AreKilled()
    {
        Assert.Equal(SeccompFilter.RetKillProcess, Verdict(Data("read", arch: 0x40000003 /* i386 */)));
        Assert.Equal(SeccompFilter.RetKillProcess, Verdict(Data(0x40000000, SyscallAbi.AuditArchX86_64)));
        Assert.Equal(SeccompFilter.RetKillProcess, Verdict(Data(63, SyscallAbi.AuditArchAarch64)));
    }

    /// <summary>The same rules for aarch64 check its architecture and its numbers (read is 63 there, 0 on x86_64),
    /// and have no x32 range to refuse.</summary>
    [Fact]
    public void AnAarch64FilterChecksAarch64sArchitectureAndNumbers()
    {
        var program = new SeccompFilter(Rules, SyscallAbi.Aarch64).Compile(SeccompFilter.RetTrap);
        uint Arm(string name, params ulong[] args) => Run(program, Data(name, SyscallAbi.AuditArchAarch64, args));
        Assert.Equal(SeccompFilter.RetAllow, Arm("read"));
        Assert.Equal(SeccompFilter.RetAllow, Arm("exit_group"));
        Assert.Equal(SeccompFilter.RetAllow, Arm("ioctl", 5, 0xAE80));
        Assert.Equal(SeccompFilter.RetTrap, Arm("ioctl", 5, 0x5401));
        Assert.Equal(SeccompFilter.RetTrap, Arm("write"));
        Assert.Equal(SeccompFilter.RetTrap, Run(program, Data(0, SyscallAbi.AuditArchAarch64))); // io_setup, not read
        Assert.Equal(SeccompFilter.RetTrap, Run(program, Data(0x40000000, SyscallAbi.AuditArchAarch64)));
        Assert.Equal(SeccompFilter.RetKillProcess, Run(program, Data("read", SyscallAbi.AuditArchX86_64)));
    }

    [Fact]
    public void BadRulesAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new SeccompFilter([SyscallRule.Allow("read"), SyscallRule.Allow("read")]));
        Assert.Throws<ArgumentException>(() => new SeccompFilter([SyscallRule.Allow("no_such_call")]));
        Assert.Throws<ArgumentException>(() => new SeccompFilter([SyscallRule.Allow("poll")], SyscallAbi.Aarch64));
        Assert.Throws<ArgumentException>(() => new SeccompFilter([SyscallRule.AllowIf("ioctl", 7, 1)]));
        var tooMany = SyscallRule.AllowIf("ioctl", 1, [.. Enumerable.Range(0, 300).Select(i => (uint)i)]);
        Assert.Throws<ArgumentException>(() => new SeccompFilter([tooMany]).Compile(SeccompFilter.RetTrap));
    }

    [Fact]
    public void NamesComeFromTheKernelTable()
    {
        var x86 = SyscallAbi.X86_64;
        Assert.Equal(0, x86.Number("read"));
        Assert.Equal(16, x86.Number("ioctl"));
        Assert.Equal(317, x86.Number("seccomp"));
        Assert.Equal("exit_group", x86.CallName(231));
        Assert.Null(x86.CallName(-1));
        Assert.Null(x86.CallName(100_000));
        var arm = SyscallAbi.Aarch64;
        Assert.Equal(63, arm.Number("read"));
        Assert.Equal(29, arm.Number("ioctl"));
        Assert.Equal(277, arm.Number("seccomp"));
        Assert.Equal(79, arm.Number("newfstatat")); // asm-generic's __NR3264_fstatat, resolved
        Assert.Equal(222, arm.Number("mmap"));
        Assert.Equal("exit_group", arm.CallName(94));
        Assert.False(arm.Has("poll") || arm.Has("open") || arm.Has("epoll_wait"));
    }
}

[Trait("Level", "Unit")]
public sealed class SeccompProfileTests
{
    private static uint Verdict(ThreadKind kind, string name, params ulong[] args) =>
        SeccompFilterTests.Run(SeccompProfile.For(kind, abi: SyscallAbi.X86_64).Compile(SeccompFilter.RetTrap),
            SeccompFilterTests.Data(name, SyscallAbi.AuditArchX86_64, args));

    private static bool Allowed(ThreadKind kind, string name, params ulong[] args) =>
        Verdict(kind, name, args) == SeccompFilter.RetAllow;

    [Fact]
    public void TheWholeProcessStaysWithinFortyCalls()
    {
        foreach (var abi in new[] { SyscallAbi.X86_64, SyscallAbi.Aarch64 })
        {
            Assert.InRange(SeccompProfile.ProcessWide(abi: abi).Count, 1, 40);
            Assert.InRange(SeccompProfile.ProcessWide(irqfdAndIoeventfd: false, abi: abi).Count, 1, 40);
        }
    }

    [Theory]
    [InlineData(ThreadKind.Main)]
    [InlineData(ThreadKind.Vcpu)]
    [InlineData(ThreadKind.IoThread)]
    [InlineData(ThreadKind.Runtime)]
    public void NoThreadMayStartProgramsThreadsOrVms(ThreadKind kind)
    {
        foreach (var name in new[] { "execve", "execveat", "clone", "clone3", "fork", "ptrace", "seccomp", "prctl",
                     "mount", "setns", "unshare", "bpf", "process_vm_writev", "kill", "open_by_handle_at", "init_module" })
            Assert.False(Allowed(kind, name), $"{kind} may call {name}");
        Assert.False(Allowed(kind, "mmap", 0, 4096, 5 /* PROT_READ|PROT_EXEC */, 0x22), $"{kind} may map code");
        Assert.False(Allowed(kind, "mprotect", 0, 4096, 7), $"{kind} may make memory executable");
        Assert.False(Allowed(kind, "ioctl", 3, KvmIoctls.CreateVm), $"{kind} may create a VM");
        Assert.False(Allowed(kind, "futex", 0, 6 /* FUTEX_LOCK_PI */), $"{kind} may take a PI futex");
        Assert.False(Allowed(kind, "madvise", 0, 4096, 100 /* MADV_HWPOISON */), $"{kind} may poison a page");
    }

    [Fact]
    public void EveryThreadCanDoWhatTheRuntimeAndTheBlockedCallReportNeed()
    {
        foreach (var kind in SeccompProfile.Kinds)
        {
            Assert.True(Allowed(kind, "mmap", 0, 4096, 3, 0x22), $"{kind}: GC heap");
            Assert.True(Allowed(kind, "futex", 0, 128 | 256 | 9), $"{kind}: a timed private wait");
            Assert.True(Allowed(kind, "openat", unchecked((ulong)-100), 0, 0 /* O_RDONLY: /proc/meminfo */), kind.ToString());
            Assert.True(Allowed(kind, "write") && Allowed(kind, "exit_group"), $"{kind}: the SIGSYS report");
            // What the GC's memory-load check and thread suspension call, on every collection.
            foreach (string call in new[] { "sysinfo", "prlimit64", "newfstatat", "read", "close", "membarrier", "tgkill", "getpid" })
                Assert.True(Allowed(kind, call), $"{kind}: {call} (garbage collection)");
            Assert.True(Allowed(kind, "mprotect", 0, 4096, 3 /* RW: commit */) && Allowed(kind, "madvise", 0, 4096, 17 /* DODUMP */),
                $"{kind}: committing GC memory");
            Assert.True(Allowed(kind, "mmap", 0, 4096, 0, 0x32 /* FIXED|PRIVATE|ANONYMOUS */) && Allowed(kind, "madvise", 0, 4096, 16),
                $"{kind}: decommitting GC memory");
            // abort() after an unhandled exception raises SIGABRT on its own thread.
            Assert.True(Allowed(kind, "gettid") && Allowed(kind, "rt_sigprocmask"), $"{kind}: the abort path");
        }
    }

    [Fact]
    public void VcpusRunKvmAndNothingMore()
    {
        Assert.True(Allowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.Run));
        Assert.True(Allowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.IrqLine));
        Assert.False(Allowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.SetUserMemoryRegion));
        Assert.False(Allowed(ThreadKind.Vcpu, "openat", unchecked((ulong)-100), 0, 2 /* O_RDWR */));
        Assert.False(Allowed(ThreadKind.Vcpu, "socket"));
        Assert.False(Allowed(ThreadKind.Vcpu, "preadv2"));
        Assert.True(Allowed(ThreadKind.Vcpu, "pwritev2")); // a flash program or erase, written through to the VARS file
        // Without ioeventfd the vCPU runs the device queues itself.
        var slow = SeccompProfile.For(ThreadKind.Vcpu, irqfdAndIoeventfd: false, SyscallAbi.X86_64).AllowedNames.ToHashSet();
        Assert.Contains("preadv2", slow);
        Assert.Contains("ioctl", slow);
    }

    [Fact]
    public void TheMainLoopHotplugsButCannotReshapeTheVm()
    {
        Assert.True(Allowed(ThreadKind.Main, "openat", unchecked((ulong)-100), 0, 0x80002 /* O_RDWR|O_CLOEXEC */));
        Assert.True(Allowed(ThreadKind.Main, "ioctl", 9, 0x400454ca /* TUNSETIFF */));
        Assert.True(Allowed(ThreadKind.Main, "fcntl", 9, 37 /* F_OFD_SETLK */));
        Assert.False(Allowed(ThreadKind.Main, "fcntl", 9, 0 /* F_DUPFD */));
        Assert.False(Allowed(ThreadKind.Main, "ioctl", 9, KvmIoctls.Run));
        Assert.False(Allowed(ThreadKind.Main, "ioctl", 9, KvmIoctls.CreateVcpu));
        Assert.False(Allowed(ThreadKind.Main, "bind"));
        Assert.False(Allowed(ThreadKind.Main, "listen"));
    }

    [Fact]
    public void TheMainLoopMayResetAQ35ButNotMemoryOrVcpus()
    {
        // A reset puts back the vCPUs' and interrupt controllers' state, undoes the devices' KVM bindings and reads
        // the kernel and initrd again; it adds no memory slot and no vCPU, and reads with preadv2, not pread64.
        foreach (ulong request in new[] { KvmIoctls.SetRegs, KvmIoctls.SetSregs, KvmIoctls.SetMsrs, KvmIoctls.SetLapic,
            KvmIoctls.SetMpState, KvmIoctls.SetIrqchip, KvmIoctls.SetPit2, KvmIoctls.Ioeventfd, KvmIoctls.Irqfd, KvmIoctls.SetGsiRouting })
            Assert.True(Allowed(ThreadKind.Main, "ioctl", 9, request), $"0x{request:x}");
        Assert.True(Allowed(ThreadKind.Main, "preadv2"));
        Assert.False(Allowed(ThreadKind.Main, "pread64"));
        Assert.False(Allowed(ThreadKind.Main, "ioctl", 9, KvmIoctls.SetUserMemoryRegion));
        Assert.False(Allowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.SetRegs)); // the vCPUs never set their own state
    }

    [Fact]
    public void IothreadsOnlyMoveData()
    {
        var names = SeccompProfile.For(ThreadKind.IoThread, abi: SyscallAbi.X86_64).AllowedNames.ToHashSet();
        Assert.Contains("preadv2", names);
        Assert.Contains("epoll_wait", names);
        Assert.DoesNotContain("socket", names);
        Assert.False(Allowed(ThreadKind.IoThread, "openat", unchecked((ulong)-100), 0, 0x40 /* O_CREAT */));
        // Its only ioctls stop a vhost-kernel device that failed and raise a q35 virtio-pci function's interrupt
        // (INTx level, MSI-X message): no other KVM call, no tap, no vhost set-up.
        Assert.True(Allowed(ThreadKind.IoThread, "ioctl", 3, Libc.VHOST_VSOCK_SET_RUNNING));
        Assert.True(Allowed(ThreadKind.IoThread, "ioctl", 3, Libc.VHOST_NET_SET_BACKEND));
        Assert.False(Allowed(ThreadKind.IoThread, "ioctl", 3, Libc.VHOST_SET_MEM_TABLE));
        Assert.False(Allowed(ThreadKind.IoThread, "ioctl", 3, Libc.TUNSETOFFLOAD));
        Assert.True(Allowed(ThreadKind.IoThread, "ioctl", 3, (ulong)KvmIoctls.IrqLine));
        Assert.True(Allowed(ThreadKind.IoThread, "ioctl", 3, (ulong)KvmIoctls.SignalMsi));
        Assert.False(Allowed(ThreadKind.IoThread, "ioctl", 3, (ulong)KvmIoctls.Run));
        Assert.False(Allowed(ThreadKind.IoThread, "ioctl", 3, (ulong)KvmIoctls.Ioeventfd));
    }

    [Fact]
    public void VcpusMaySetUpAndStopVhostRingsButNotOwnOrOpenVhostDevices()
    {
        foreach (ulong request in new[] { Libc.VHOST_SET_FEATURES, Libc.VHOST_SET_MEM_TABLE, Libc.VHOST_SET_VRING_NUM,
                     Libc.VHOST_SET_VRING_BASE, Libc.VHOST_SET_VRING_ADDR, Libc.VHOST_SET_VRING_KICK, Libc.VHOST_SET_VRING_CALL,
                     Libc.VHOST_SET_VRING_ERR, Libc.VHOST_GET_VRING_BASE, Libc.VHOST_VSOCK_SET_RUNNING, Libc.VHOST_NET_SET_BACKEND })
            Assert.True(Allowed(ThreadKind.Vcpu, "ioctl", 3, request), $"0x{request:x}");
        // Ownership and the CID are set before the filters go on.
        Assert.False(Allowed(ThreadKind.Vcpu, "ioctl", 3, Libc.VHOST_SET_OWNER));
        Assert.False(Allowed(ThreadKind.Vcpu, "ioctl", 3, Libc.VHOST_VSOCK_SET_GUEST_CID));
    }

    /// <summary>The aarch64 lists: the same calls under aarch64's names (ppoll, epoll_pwait, unlinkat), no x86-only
    /// KVM request, and the vCPU's own program counter for an error.</summary>
    [Fact]
    public void Aarch64ListsHaveTheSameCallsUnderTheirGenericNamesAndNoX86Requests()
    {
        var arm = SyscallAbi.Aarch64;
        bool ArmAllowed(ThreadKind kind, string name, params ulong[] args) =>
            SeccompFilterTests.Run(SeccompProfile.For(kind, abi: arm).Compile(SeccompFilter.RetTrap),
                SeccompFilterTests.Data(name, SyscallAbi.AuditArchAarch64, args)) == SeccompFilter.RetAllow;
        foreach (var kind in SeccompProfile.Kinds)
        {
            Assert.Equal(arm, SeccompProfile.For(kind, abi: arm).Abi);
            foreach (string call in new[] { "sysinfo", "prlimit64", "newfstatat", "read", "close", "membarrier", "tgkill", "write", "exit_group" })
                Assert.True(ArmAllowed(kind, call), $"{kind}: {call}");
            Assert.False(ArmAllowed(kind, "mmap", 0, 4096, 5, 0x22), $"{kind} may map code");
            foreach (string name in new[] { "execve", "clone", "clone3", "ptrace", "seccomp", "mount", "bpf" })
                Assert.False(ArmAllowed(kind, name), $"{kind} may call {name}");
            foreach (ulong request in new[] { KvmIoctls.SignalMsi, KvmIoctls.SetSregs, KvmIoctls.GetClock, KvmIoctls.SetPit2 })
                Assert.False(ArmAllowed(kind, "ioctl", 3, request), $"{kind}: 0x{request:x}");
        }
        Assert.True(ArmAllowed(ThreadKind.Main, "ppoll") && ArmAllowed(ThreadKind.Main, "epoll_pwait") && ArmAllowed(ThreadKind.Main, "unlinkat"));
        Assert.True(ArmAllowed(ThreadKind.IoThread, "epoll_pwait"));
        Assert.True(ArmAllowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.Run));
        Assert.True(ArmAllowed(ThreadKind.Vcpu, "ioctl", 7, StratoVirt.Kvm.Arm64.ArmIoctls.GetOneReg));
        Assert.False(ArmAllowed(ThreadKind.Vcpu, "ioctl", 7, StratoVirt.Kvm.Arm64.ArmIoctls.SetOneReg));
        Assert.False(ArmAllowed(ThreadKind.Main, "ioctl", 7, KvmIoctls.Run));
        // x86's lists keep their own names and requests.
        Assert.True(Allowed(ThreadKind.Main, "poll") && Allowed(ThreadKind.Main, "unlink"));
        Assert.True(Allowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.SignalMsi) && Allowed(ThreadKind.Vcpu, "ioctl", 7, KvmIoctls.GetRegs));
    }
}
