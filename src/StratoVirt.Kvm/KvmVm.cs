using StratoVirt.Sys;

namespace StratoVirt.Kvm;

/// <summary>A KVM virtual machine: memory slots, in-kernel interrupt controllers, vCPUs.</summary>
public sealed unsafe partial class KvmVm : IGuestClock, IDisposable
{
    private readonly FileDescriptor _fd;

    internal KvmVm(KvmSystem system, FileDescriptor fd)
    {
        System = system;
        _fd = fd;
    }

    public KvmSystem System { get; }
    internal int Fd => _fd.Fd;

    /// <summary>KVM_MEM_READONLY: the guest reads the slot as memory; its writes exit as MMIO.</summary>
    public const uint MemReadonly = 1 << 1;

    public void SetUserMemoryRegion(uint slot, ulong guestAddress, ulong size, nint hostAddress, uint flags = 0)
    {
        var region = new KvmUserspaceMemoryRegion
        {
            Slot = slot, Flags = flags, GuestPhysAddr = guestAddress, MemorySize = size, UserspaceAddr = (ulong)hostAddress,
        };
        // region is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetUserMemoryRegion, &region),
            $"KVM_SET_USER_MEMORY_REGION slot {slot} at 0x{guestAddress:x}");
    }

    public void SetTssAddress(ulong address) =>
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetTssAddr, address), "KVM_SET_TSS_ADDR");

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR; returns false where the host refuses it (PVM does not need it).</summary>
    public bool TrySetIdentityMapAddress(ulong address) =>
        // address is this call's parameter, which the ioctl reads as a u64.
        Libc.Ioctl(_fd.Fd, KvmIoctls.SetIdentityMapAddr, &address) == 0;

    /// <summary>Creates the in-kernel PIC, IOAPIC and per-vCPU local APICs.</summary>
    public void CreateIrqchip() =>
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.CreateIrqchip, 0UL), "KVM_CREATE_IRQCHIP");

    /// <summary>Creates the in-kernel i8254 PIT (which also handles the speaker port 0x61).</summary>
    public void CreatePit2()
    {
        var config = new KvmPitConfig();
        // config is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.CreatePit2, &config), "KVM_CREATE_PIT2");
    }

    /// <summary>Sets an interrupt line of the in-kernel irqchip to a level.</summary>
    public void SetIrqLine(uint gsi, bool level)
    {
        var irq = new KvmIrqLevel { Irq = gsi, Level = level ? 1u : 0u };
        // irq is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.IrqLine, &irq), $"KVM_IRQ_LINE {gsi}");
    }

    /// <summary>KVM_IRQFD: a write to <paramref name="eventFd"/> raises an edge on <paramref name="gsi"/> in the kernel.</summary>
    public void AssignIrqfd(int eventFd, uint gsi)
    {
        var irqfd = new KvmIrqfd { Fd = (uint)eventFd, Gsi = gsi };
        // irqfd is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.Irqfd, &irqfd), $"KVM_IRQFD gsi {gsi}");
    }

    /// <summary>KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE, for a level-triggered line: a write to
    /// <paramref name="eventFd"/> asserts <paramref name="gsi"/>; when the guest ends the interrupt (EOI) the kernel
    /// deasserts it and writes <paramref name="resampleFd"/>, so the VMM can assert it again while the device still
    /// wants service.</summary>
    public void AssignResampledIrqfd(int eventFd, uint gsi, int resampleFd)
    {
        var irqfd = new KvmIrqfd { Fd = (uint)eventFd, Gsi = gsi, Flags = KvmIrqfd.FlagResample, ResampleFd = (uint)resampleFd };
        // irqfd is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.Irqfd, &irqfd), $"KVM_IRQFD (resample) gsi {gsi}");
    }

    /// <summary>Detaches an irqfd from <paramref name="gsi"/> (a device unplugged, a vector moved).</summary>
    public void DeassignIrqfd(int eventFd, uint gsi)
    {
        var irqfd = new KvmIrqfd { Fd = (uint)eventFd, Gsi = gsi, Flags = KvmIrqfd.FlagDeassign };
        // irqfd is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.Irqfd, &irqfd), $"KVM_IRQFD deassign gsi {gsi}");
    }

    /// <summary>KVM_SET_GSI_ROUTING: replaces the whole routing table with <paramref name="routes"/>.</summary>
    public void SetGsiRouting(GsiRoutes routes)
    {
        var entries = routes.Entries;
        // struct kvm_irq_routing: u32 nr, u32 flags, then the entries.
        var buffer = new byte[8 + entries.Count * sizeof(KvmIrqRoutingEntry)];
        fixed (byte* p = buffer)
        {
            // The buffer holds the 8-byte header and every entry; the kernel reads exactly that much.
            *(uint*)p = (uint)entries.Count;
            for (int i = 0; i < entries.Count; i++) ((KvmIrqRoutingEntry*)(p + 8))[i] = entries[i];
            SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetGsiRouting, p), $"KVM_SET_GSI_ROUTING ({entries.Count} routes)");
        }
    }

    /// <summary>KVM_SIGNAL_MSI: delivers one message-signalled interrupt now. False when the guest's interrupt
    /// controller blocked it (KVM returns 0 for a message nobody took).</summary>
    public bool SignalMsi(ulong address, uint data)
    {
        var msi = new KvmMsi { AddressLow = (uint)address, AddressHigh = (uint)(address >> 32), Data = data };
        // msi is a local of this frame that the ioctl only reads.
        return SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SignalMsi, &msi), "KVM_SIGNAL_MSI") > 0;
    }

    /// <summary>KVM_IOEVENTFD: a guest write of <paramref name="value"/> (any value when null; length
    /// <paramref name="length"/>) to <paramref name="address"/> (an MMIO address, or a port with
    /// <paramref name="pio"/>) signals <paramref name="eventFd"/> in the kernel instead of exiting to user space.</summary>
    public void AssignIoeventfd(ulong address, uint length, ulong? value, int eventFd, bool pio = false) =>
        Ioeventfd(address, length, value, eventFd, pio, deassign: false);

    /// <summary>Removes an ioeventfd assigned with the same arguments (a BAR that moved, a device unplugged).</summary>
    public void DeassignIoeventfd(ulong address, uint length, ulong? value, int eventFd, bool pio = false) =>
        Ioeventfd(address, length, value, eventFd, pio, deassign: true);

    private void Ioeventfd(ulong address, uint length, ulong? value, int eventFd, bool pio, bool deassign)
    {
        var ioeventfd = new KvmIoeventfd
        {
            Addr = address, Len = length, Datamatch = value ?? 0, Fd = eventFd,
            Flags = (value is null ? 0 : KvmIoeventfd.FlagDatamatch) | (pio ? KvmIoeventfd.FlagPio : 0)
                    | (deassign ? KvmIoeventfd.FlagDeassign : 0),
        };
        // ioeventfd is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.Ioeventfd, &ioeventfd),
            $"KVM_IOEVENTFD{(deassign ? " deassign" : "")} at {(pio ? "port" : "")} 0x{address:x}");
    }

    /// <summary>KVM_REGISTER_COALESCED_MMIO: the guest's writes to [<paramref name="address"/>, +<paramref name="length"/>)
    /// (ports with <paramref name="pio"/>, else MMIO) go into the coalesced ring (<see cref="CoalescedRing"/>) instead
    /// of exiting, until the ring is full. Reads still exit.</summary>
    public void RegisterCoalesced(ulong address, uint length, bool pio) =>
        CoalescedZone(KvmIoctls.RegisterCoalescedMmio, address, length, pio);

    /// <summary>Removes a zone <see cref="RegisterCoalesced"/> added; the guest's next write there exits.</summary>
    public void UnregisterCoalesced(ulong address, uint length, bool pio) =>
        CoalescedZone(KvmIoctls.UnregisterCoalescedMmio, address, length, pio);

    private void CoalescedZone(ulong request, ulong address, uint length, bool pio)
    {
        var zone = new KvmCoalescedZone { Addr = address, Size = length, Pio = pio ? 1u : 0u };
        // zone is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, request, &zone),
            $"KVM_{(request == KvmIoctls.RegisterCoalescedMmio ? "" : "UN")}REGISTER_COALESCED_MMIO at {(pio ? "port " : "")}0x{address:x}");
    }

    /// <summary>KVM_GET_CLOCK: the guest's kvmclock, in ns.</summary>
    public ulong Get()
    {
        var data = new KvmClockData();
        // data is a local of this frame that the ioctl fills.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.GetClock, &data), "KVM_GET_CLOCK");
        return data.Clock;
    }

    /// <summary>KVM_SET_CLOCK: sets the guest's kvmclock (used to keep it still across a pause).</summary>
    public void Set(ulong nanoseconds)
    {
        var data = new KvmClockData { Clock = nanoseconds };
        // data is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetClock, &data), "KVM_SET_CLOCK");
    }

    /// <summary>KVM_GET_CLOCK with its flags, for a snapshot.</summary>
    public KvmClockData GetClockData()
    {
        var data = new KvmClockData();
        // data is a local of this frame that the ioctl fills.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.GetClock, &data), "KVM_GET_CLOCK");
        return data;
    }

    /// <summary>KVM_GET_IRQCHIP of one chip (<see cref="KvmIrqchip.PicMaster"/>, ...).</summary>
    public KvmIrqchip GetIrqchip(uint chipId)
    {
        var chip = new KvmIrqchip { ChipId = chipId };
        // chip is a local of this frame; the ioctl reads its id and fills the rest.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.GetIrqchip, &chip), $"KVM_GET_IRQCHIP {chipId}");
        return chip;
    }

    public void SetIrqchip(in KvmIrqchip chip)
    {
        // chip is pinned for the call, which only reads it.
        fixed (KvmIrqchip* p = &chip)
            SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetIrqchip, p), $"KVM_SET_IRQCHIP {chip.ChipId}");
    }

    public KvmPitState2 GetPit2()
    {
        var pit = new KvmPitState2();
        // pit is a local of this frame that the ioctl fills.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.GetPit2, &pit), "KVM_GET_PIT2");
        return pit;
    }

    public void SetPit2(in KvmPitState2 pit)
    {
        // pit is pinned for the call, which only reads it.
        fixed (KvmPitState2* p = &pit)
            SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetPit2, p), "KVM_SET_PIT2");
    }

    public KvmVcpu CreateVcpu(int id)
    {
        int fd = SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.CreateVcpu, (ulong)id), $"KVM_CREATE_VCPU {id}");
        return new KvmVcpu(id, new FileDescriptor(fd), System.VcpuMmapSize);
    }

    public void Dispose() => _fd.Dispose();
}
