using StratoVirt.Sys;

namespace StratoVirt.Kvm;

/// <summary>A KVM virtual machine: memory slots, in-kernel interrupt controllers, vCPUs.</summary>
public sealed unsafe class KvmVm : IDisposable
{
    private readonly FileDescriptor _fd;

    internal KvmVm(KvmSystem system, FileDescriptor fd)
    {
        System = system;
        _fd = fd;
    }

    public KvmSystem System { get; }
    internal int Fd => _fd.Fd;

    public void SetUserMemoryRegion(uint slot, ulong guestAddress, ulong size, nint hostAddress)
    {
        var region = new KvmUserspaceMemoryRegion
        {
            Slot = slot, GuestPhysAddr = guestAddress, MemorySize = size, UserspaceAddr = (ulong)hostAddress,
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

    /// <summary>KVM_IOEVENTFD: a guest MMIO write of <paramref name="value"/> (length <paramref name="length"/>) to
    /// <paramref name="address"/> signals <paramref name="eventFd"/> in the kernel instead of exiting to user space.</summary>
    public void AssignIoeventfd(ulong address, uint length, ulong value, int eventFd)
    {
        var ioeventfd = new KvmIoeventfd
        {
            Addr = address, Len = length, Datamatch = value, Fd = eventFd, Flags = KvmIoeventfd.FlagDatamatch,
        };
        // ioeventfd is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.Ioeventfd, &ioeventfd), $"KVM_IOEVENTFD at 0x{address:x}");
    }

    /// <summary>KVM_GET_CLOCK: the guest's kvmclock, in ns.</summary>
    public ulong GetClock()
    {
        var data = new KvmClockData();
        // data is a local of this frame that the ioctl fills.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.GetClock, &data), "KVM_GET_CLOCK");
        return data.Clock;
    }

    /// <summary>KVM_SET_CLOCK: sets the guest's kvmclock (used to keep it still across a pause).</summary>
    public void SetClock(ulong nanoseconds)
    {
        var data = new KvmClockData { Clock = nanoseconds };
        // data is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.SetClock, &data), "KVM_SET_CLOCK");
    }

    public KvmVcpu CreateVcpu(int id)
    {
        int fd = SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.CreateVcpu, (ulong)id), $"KVM_CREATE_VCPU {id}");
        return new KvmVcpu(id, new FileDescriptor(fd), System.VcpuMmapSize);
    }

    public void Dispose() => _fd.Dispose();
}
