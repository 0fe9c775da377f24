using System.Runtime.InteropServices;
using StratoVirt.Kvm.Arm64;
using StratoVirt.Sys;

namespace StratoVirt.Kvm;

/// <summary>One KVM vCPU: its register state and the shared kvm_run page, whose exits it decodes.</summary>
public sealed unsafe partial class KvmVcpu : IVcpu
{
    private readonly FileDescriptor _fd;
    private readonly int _runSize;
    private KvmRun* _run;

    internal KvmVcpu(int id, FileDescriptor fd, int runSize)
    {
        Id = id;
        _fd = fd;
        _runSize = runSize;
        void* p = Libc.Mmap(null, (nuint)runSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd.Fd, 0);
        if (p == (void*)-1)
        {
            var ex = SysException.Last($"mmap kvm_run of vCPU {id}");
            fd.Dispose();
            throw ex;
        }
        _run = (KvmRun*)p;
    }

    public int Id { get; }

    /// <summary>The kvm_run page; valid until Dispose.</summary>
    internal ref KvmRun RunState => ref *_run;

    /// <summary>Bytes of the kvm_run page at an offset (the I/O data area, the MMIO data field).</summary>
    private Span<byte> RunBytes(ulong offset, int length)
    {
        if (length < 0 || offset > (ulong)(_runSize - length))
            throw new SysException($"KVM_RUN on vCPU {Id}: exit data at {offset}+{length} lies outside kvm_run", Libc.EINVAL);
        // Bounds were checked against the mapping size above.
        return new Span<byte>((byte*)_run + offset, length);
    }

    public bool ImmediateExit
    {
        get => _run->ImmediateExit != 0;
        set => _run->ImmediateExit = value ? (byte)1 : (byte)0;
    }

    public ulong InstructionPointer
    {
        get
        {
            try { return RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? GetOneReg(ArmCoreRegister.Pc) : GetRegs().Rip; }
            catch (SysException) { return 0; }
        }
    }

    /// <summary>Enters the guest and decodes why it left. EINTR and EAGAIN (a kick, another signal,
    /// immediate_exit) are an Interrupted exit; any other failure of KVM_RUN is a SysException.</summary>
    public VcpuExit Run()
    {
        if (Libc.Ioctl(_fd.Fd, KvmIoctls.Run, 0UL) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR || errno == Libc.EAGAIN) return VcpuExit.Of(VcpuExitKind.Interrupted);
            throw new SysException($"KVM_RUN on vCPU {Id}", errno);
        }
        ref var run = ref *_run;
        switch ((KvmExit)run.ExitReason)
        {
            case KvmExit.Io:
                int size = run.IoSize, count = (int)run.IoCount;
                return VcpuExit.Io(run.IoPort, run.IoDirection == KvmRun.IoOut, size, count, RunBytes(run.IoDataOffset, size * count));
            case KvmExit.Mmio:
                return VcpuExit.Mmio(run.MmioPhysAddr, run.MmioIsWrite != 0,
                    RunBytes(KvmRun.MmioDataOffset, (int)Math.Min(run.MmioLen, KvmRun.MmioDataSize)));
            case KvmExit.Hlt: return VcpuExit.Of(VcpuExitKind.Hlt);
            case KvmExit.Shutdown: return VcpuExit.Of(VcpuExitKind.Shutdown);
            case KvmExit.SystemEvent: return VcpuExit.Of(VcpuExitKind.SystemEvent, run.SystemEventType);
            case KvmExit.InternalError: return VcpuExit.Of(VcpuExitKind.InternalError, run.InternalSuberror);
            case KvmExit.FailEntry: return VcpuExit.Of(VcpuExitKind.FailEntry, run.FailEntryReason);
            case KvmExit.Intr: return VcpuExit.Of(VcpuExitKind.Interrupted);
            case KvmExit.IrqWindowOpen: return VcpuExit.Of(VcpuExitKind.IrqWindowOpen);
            default: return VcpuExit.Of(VcpuExitKind.Unknown, run.ExitReason);
        }
    }

    /// <summary>Maps the VM's coalesced ring, which every vCPU's fd offers at page <paramref name="pageOffset"/>
    /// (KVM_CAP_COALESCED_MMIO's value), with a mapping of its own that lives as long as the returned ring.</summary>
    public CoalescedRing MapCoalescedRing(int pageOffset)
    {
        int pageSize = Environment.SystemPageSize;
        long offset = (long)pageOffset * pageSize;
        if (pageOffset <= 0 || offset + pageSize > _runSize)
            throw new SysException($"the coalesced ring of vCPU {Id} at page {pageOffset} lies outside its mapping", Libc.EINVAL);
        void* p = Libc.Mmap(null, (nuint)pageSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, _fd.Fd, offset);
        if (p == (void*)-1) throw SysException.Last($"mmap the coalesced ring of vCPU {Id}");
        return new CoalescedRing((nint)p, pageSize, owned: true);
    }

    public KvmRegs GetRegs() => Get<KvmRegs>(KvmIoctls.GetRegs, "KVM_GET_REGS");
    public void SetRegs(in KvmRegs regs) => Set(KvmIoctls.SetRegs, regs, "KVM_SET_REGS");
    public KvmSregs GetSregs() => Get<KvmSregs>(KvmIoctls.GetSregs, "KVM_GET_SREGS");
    public void SetSregs(in KvmSregs sregs) => Set(KvmIoctls.SetSregs, sregs, "KVM_SET_SREGS");
    public KvmFpu GetFpu() => Get<KvmFpu>(KvmIoctls.GetFpu, "KVM_GET_FPU");
    public void SetFpu(in KvmFpu fpu) => Set(KvmIoctls.SetFpu, fpu, "KVM_SET_FPU");
    public KvmMpState GetMpState() => Get<KvmMpState>(KvmIoctls.GetMpState, "KVM_GET_MP_STATE");
    public void SetMpState(in KvmMpState state) => Set(KvmIoctls.SetMpState, state, "KVM_SET_MP_STATE");
    public KvmVcpuEvents GetVcpuEvents() => Get<KvmVcpuEvents>(KvmIoctls.GetVcpuEvents, "KVM_GET_VCPU_EVENTS");
    public void SetVcpuEvents(in KvmVcpuEvents events) => Set(KvmIoctls.SetVcpuEvents, events, "KVM_SET_VCPU_EVENTS");
    public KvmDebugRegs GetDebugRegs() => Get<KvmDebugRegs>(KvmIoctls.GetDebugRegs, "KVM_GET_DEBUGREGS");
    public void SetDebugRegs(in KvmDebugRegs regs) => Set(KvmIoctls.SetDebugRegs, regs, "KVM_SET_DEBUGREGS");
    public KvmXcrs GetXcrs() => Get<KvmXcrs>(KvmIoctls.GetXcrs, "KVM_GET_XCRS");
    public void SetXcrs(in KvmXcrs xcrs) => Set(KvmIoctls.SetXcrs, xcrs, "KVM_SET_XCRS");

    /// <summary>The XSAVE area (FPU, SSE, AVX, ... state) into <paramref name="area"/>: at least 4 KiB, and the size
    /// KVM_CAP_XSAVE2 gives when that is larger, in which case KVM_GET_XSAVE2 fills it.</summary>
    public void GetXsave(Span<byte> area)
    {
        if (area.Length < XsaveMinimum) throw new ArgumentException($"an XSAVE area is at least {XsaveMinimum} bytes", nameof(area));
        // The span is pinned for the call and at least as large as the area KVM writes (checked by the caller's size).
        fixed (byte* p = area)
            SysException.Check(Libc.Ioctl(_fd.Fd, area.Length > XsaveMinimum ? KvmIoctls.GetXsave2 : KvmIoctls.GetXsave, p),
                "KVM_GET_XSAVE");
    }

    public void SetXsave(ReadOnlySpan<byte> area)
    {
        if (area.Length < XsaveMinimum) throw new ArgumentException($"an XSAVE area is at least {XsaveMinimum} bytes", nameof(area));
        // The span is pinned for the call; KVM reads at most the XSAVE2 size this area was saved with.
        fixed (byte* p = area)
            SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetXsave, p), "KVM_SET_XSAVE");
    }

    /// <summary>struct kvm_xsave without KVM_CAP_XSAVE2.</summary>
    public const int XsaveMinimum = 4096;

    /// <summary>
    /// Reads the MSRs in <paramref name="indices"/>. KVM stops at the first it cannot read, so the call resumes
    /// after it; those it refuses are left out of the result (PVM refuses some, and none is needed to run).
    /// </summary>
    public KvmMsrEntry[] GetMsrs(ReadOnlySpan<uint> indices)
    {
        var read = new List<KvmMsrEntry>(indices.Length);
        var buffer = new byte[8 + indices.Length * sizeof(KvmMsrEntry)];
        // The array is pinned for the loop; its header announces at most indices.Length entries, which it holds.
        fixed (byte* p = buffer)
        {
            var entries = (KvmMsrEntry*)(p + 8);
            while (!indices.IsEmpty)
            {
                *(ulong*)p = (uint)indices.Length;
                for (int i = 0; i < indices.Length; i++) entries[i] = new KvmMsrEntry { Index = indices[i] };
                int got = Math.Max(Libc.Ioctl(_fd.Fd, KvmIoctls.GetMsrs, p), 0);
                for (int i = 0; i < Math.Min(got, indices.Length); i++) read.Add(entries[i]);
                if (got >= indices.Length) break;
                indices = indices[(got + 1)..];
            }
        }
        return [.. read];
    }
    public KvmLapicState GetLapic() => Get<KvmLapicState>(KvmIoctls.GetLapic, "KVM_GET_LAPIC");
    public void SetLapic(in KvmLapicState state) => Set(KvmIoctls.SetLapic, state, "KVM_SET_LAPIC");

    /// <summary>An ioctl that fills one kvm struct.</summary>
    private T Get<T>(ulong request, string name) where T : unmanaged
    {
        T value;
        SysException.Check(Libc.Ioctl(_fd.Fd, request, &value), name); // the kernel writes sizeof(T) bytes
        return value;
    }

    /// <summary>An ioctl that reads one kvm struct.</summary>
    private void Set<T>(ulong request, in T value, string name) where T : unmanaged
    {
        // value is pinned for the call and the kernel reads sizeof(T) bytes of it.
        fixed (T* p = &value)
            SysException.Check(Libc.Ioctl(_fd.Fd, request, p), name);
    }

    public void SetCpuid(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        int bytes = 8 + entries.Length * sizeof(KvmCpuidEntry2);
        var buffer = new byte[bytes];
        // The array is pinned for the ioctl and sized for the 8-byte header and every entry.
        fixed (byte* p = buffer)
        {
            *(uint*)p = (uint)entries.Length;
            entries.CopyTo(new Span<KvmCpuidEntry2>(p + 8, entries.Length));
            SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetCpuid2, p), "KVM_SET_CPUID2");
        }
    }

    /// <summary>
    /// Writes MSRs and returns the indices KVM refused (PVM refuses some; none is fatal). KVM stops at the first
    /// refused entry, so the call resumes after it until every entry has been tried.
    /// </summary>
    public List<uint> SetMsrs(ReadOnlySpan<KvmMsrEntry> entries)
    {
        var refused = new List<uint>();
        byte* buffer = stackalloc byte[8 + entries.Length * sizeof(KvmMsrEntry)];
        while (!entries.IsEmpty)
        {
            *(ulong*)buffer = (uint)entries.Length; // nmsrs, pad = 0
            entries.CopyTo(new Span<KvmMsrEntry>(buffer + 8, entries.Length)); // the buffer holds entries.Length entries
            int written = Math.Max(Libc.Ioctl(_fd.Fd, KvmIoctls.SetMsrs, buffer), 0);
            if (written >= entries.Length) break;
            refused.Add(entries[written].Index);
            entries = entries[(written + 1)..];
        }
        return refused;
    }

    public void Dispose()
    {
        if (_run != null)
        {
            // The page was mapped in the constructor and nothing uses it after Dispose.
            Libc.Munmap(_run, (nuint)_runSize);
            _run = null;
        }
        _fd.Dispose();
    }
}
