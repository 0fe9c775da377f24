using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Devices;
using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Machine;

/// <summary>
/// The microVM's virtio-mmio devices: on x86_64 slot n is the 0x200-byte window at 0xF0100000 + n * 0x200 with the
/// n-th free legacy IRQ (the aarch64 microVM passes its own map). x86 guests learn the slots from the DSDT (LNRO0005
/// devices, for kernels such as Debian's) and from virtio_mmio.device= on the kernel command line (for kernels built
/// like upstream's microvm config).
/// </summary>
public sealed class VirtioMmioSlots : IDisposable
{
    /// <summary>IRQs below 16, so that both discovery paths can name them, that no legacy device uses
    /// (0 PIT, 1 i8042, 2 cascade, 4 COM1, 8 RTC, 9 ACPI SCI).</summary>
    public static readonly uint[] Irqs = [5, 6, 7, 10, 11, 12, 13, 14, 15, 3];

    public static int Capacity => Irqs.Length;

    private readonly List<VirtioMmioTransport> _transports = [];
    private readonly List<EventFd> _irqFds = [];
    private readonly Func<int, VirtioMmioWindow> _window;
    private readonly Func<uint, uint> _irqLine;

    /// <summary>Slots at <paramref name="window"/> (the x86 map when null): its Irq is the GSI an irqfd takes, and
    /// <paramref name="irqLine"/> turns that into KVM_IRQ_LINE's number (the same on x86; SPI-encoded on arm64).</summary>
    public VirtioMmioSlots(Func<int, VirtioMmioWindow>? window = null, Func<uint, uint>? irqLine = null)
    {
        _window = window ?? Window;
        _irqLine = irqLine ?? (irq => irq);
    }

    public IReadOnlyList<VirtioMmioTransport> Transports => _transports;

    public static VirtioMmioWindow Window(int slot) =>
        new(Layout.VirtioMmioBase + (ulong)slot * Layout.VirtioMmioSize, (uint)Layout.VirtioMmioSize, Irqs[slot]);

    /// <summary>The windows of the first <paramref name="count"/> slots.</summary>
    public static IReadOnlyList<VirtioMmioWindow> Windows(int count)
    {
        var windows = new VirtioMmioWindow[count];
        for (int slot = 0; slot < count; slot++) windows[slot] = Window(slot);
        return windows;
    }

    /// <summary>"virtio_mmio.device=512@0xf0100000:5 ..." for the first <paramref name="count"/> slots.</summary>
    public static string KernelParameters(int count)
    {
        var parameters = new string[count];
        for (int slot = 0; slot < count; slot++)
        {
            var w = Window(slot);
            parameters[slot] = $"virtio_mmio.device={w.Size}@0x{w.Base:x}:{w.Irq}";
        }
        return string.Join(' ', parameters);
    }

    /// <summary>Puts <paramref name="device"/> into the next slot: its registers on the MMIO bus, its interrupt
    /// through KVM irqfd where the host offers it (<see cref="RaisesWithIrqLine"/> says when not), and its queue
    /// notifications through KVM ioeventfd where the host offers them. <paramref name="vmFailed"/> ends the VM if
    /// KVM refuses the interrupt line.</summary>
    public void Add(VirtioDevice device, KvmVm vm, IoBus mmio, GuestMemory memory, bool irqfd, bool ioeventfd,
        Action<string> vmFailed)
    {
        int slot = _transports.Count;
        if (slot >= Capacity)
            throw new InvalidOperationException($"too many virtio devices: the microVM has {Capacity} slots");
        var window = _window(slot);
        IInterruptLine line;
        if (irqfd && !RaisesWithIrqLine(device))
        {
            var fd = new EventFd();
            _irqFds.Add(fd);
            vm.AssignIrqfd(fd.Fd, window.Irq);
            line = new EventFdInterruptLine(fd);
        }
        else
        {
            line = new KvmInterruptLine(vm, _irqLine(window.Irq), vmFailed);
        }
        var transport = new VirtioMmioTransport(device, memory, line);
        _transports.Add(transport);
        if (ioeventfd)
        {
            for (int q = 0; q < device.QueueCount; q++)
                vm.AssignIoeventfd(window.Base + VirtioMmioRegister.QueueNotify, 4, (ulong)q, transport.NotifyEvent(q).Fd);
            transport.KernelNotify = true;
        }
        transport.Attach();
        mmio.Register(window.Base, window.Size, transport);
    }

    /// <summary>
    /// Whether the slot of <paramref name="device"/> raises its pin with KVM_IRQ_LINE even where irqfd is offered:
    /// so for a device whose queues a backend outside the VMM serves (vhost-user, vhost-kernel). Each of its
    /// interrupts already costs the loop a wake-up (the backend's call eventfd, relayed so that InterruptStatus
    /// reads right; see <see cref="BackendQueues"/>), and from there an irqfd would add a second hop: KVM injects
    /// into the IOAPIC only from a workqueue (irqfd_wakeup delivers in the signalling thread only what
    /// kvm_arch_set_irq_inatomic takes, MSI routes on x86, and schedules irqfd_inject for an IOAPIC pin), so the
    /// guest waits for a kworker to run. KVM_IRQ_LINE raises the pin in the loop's own ioctl, as QEMU's virtio-mmio
    /// does. Devices the VMM serves keep irqfd (their interrupts come from the same loop; not measured yet).
    /// </summary>
    public static bool RaisesWithIrqLine(VirtioDevice device) => device.BackendQueues is not null;

    public void Dispose()
    {
        foreach (var t in _transports) t.Dispose();
        foreach (var fd in _irqFds) fd.Dispose();
    }
}

/// <summary>An edge-triggered GSI bound with KVM irqfd: one eventfd write, no ioctl. The kernel delivers each write
/// as an edge, so a level asserted here is one edge and its release is nothing.</summary>
public sealed class EventFdInterruptLine(EventFd fd) : IInterruptLine
{
    public void Pulse() => fd.Signal();

    public void SetLevel(bool asserted)
    {
        if (asserted) fd.Signal();
    }
}
