using StratoVirt.Boot;
using StratoVirt.Sys;
using StratoVirt.Devices;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Pci;
using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Transport.Pci;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Machine;

/// <summary>
/// The q35 machine's virtio-pci functions on pcie.0 and behind its root ports: each -device virtio-*-pci at its
/// bus= and addr= (or the first free slot of pcie.0), and those hot-plugged later, INTA# on the GSI of <see cref="Q35Layout.IntxGsi"/> (as the DSDT's _PRT says), MSI-X through a GSI route
/// and irqfd per vector (and per call eventfd of a vhost or vhost-user backend), or KVM_SIGNAL_MSI where the host
/// has no routes; queue notifications
/// through KVM ioeventfd when the host has it. Owns the functions, then the chardevs they use.
/// </summary>
internal sealed class VirtioPciDevices : IDisposable
{
    private readonly List<VirtioPciFunction> _functions = [];
    private readonly List<(VirtioDevice Device, PciPlacement Placement)> _unattached = [];
    private readonly List<Chardev> _chardevs = [];
    private GuestMemory? _memory;
    private IMsiController? _msi;
    private Func<int, IInterruptLine>? _intx;
    private IDoorbellBinder? _doorbells;
    private IIrqfdRoutes? _irqfds;

    public IReadOnlyList<VirtioPciFunction> Functions => _functions;

    /// <summary>Where each attached device went, by its id.</summary>
    public Dictionary<string, (int Slot, int Function)> Addresses { get; } = new(StringComparer.Ordinal);

    /// <summary>Opens each device's host side (images, taps, chardevs) so that a bad path fails before KVM exists.</summary>
    public void Create(VirtualMachine vm, Chardev? serial)
    {
        foreach (var c in vm.Config.Devices)
        {
            var loop = vm.LoopFor(c.IoThread, c.Id);
            var device = VirtioDeviceFactory.Create(c, new VirtioDeviceResources(vm.Config.MemorySize, config =>
            {
                var chardev = PcPlatform.OpenChardev(config, serial);
                _chardevs.Add(chardev);
                if (chardev is PtyChardev pty) Sys.Log.WriteRaw(2, $"char device redirected to {pty.PtyPath} (label {config.Id})\n");
                return chardev;
            }, loop) { SharedMemory = vm.MemoryShared });
            _unattached.Add((device, c.Pci ?? throw new InvalidOperationException($"device '{c.Id}' has no PCI placement")));
            if (device is VirtioBalloon balloon) vm.SetBalloon(balloon);
            if (device is VirtioBlock block) vm.WatchBlock(block);
            if (device is VhostUserDevice vhostUser) vm.WatchVhostUser(vhostUser);
        }
    }

    /// <summary>Connects the functions to come to KVM: interrupts, queue notifications (KVM ioeventfd when
    /// <paramref name="ioeventfd"/>) and irqfd routes. Call once, before <see cref="Attach"/> and <see cref="NewFunction"/>.</summary>
    public void Connect(KvmVm kvmVm, GuestMemory memory, bool ioeventfd, Action<string> vmFailed)
    {
        Msi = new KvmMsiController(kvmVm, vmFailed);
        Connect(memory, Msi, slot => new KvmInterruptLine(kvmVm, Q35Layout.IntxGsi(slot, 0), vmFailed),
            ioeventfd ? new KvmDoorbells(kvmVm) : null,
            kvmVm.System.CheckExtension(KvmCap.Irqfd) > 0 && kvmVm.System.CheckExtension(KvmCap.IrqRouting) > 0
                ? new KvmIrqfdRoutes(kvmVm) : null);
    }

    /// <summary>The same with the interrupt sinks given: <paramref name="intx"/> makes INTA# of a pcie.0 slot (a
    /// unit test's, without KVM).</summary>
    internal void Connect(GuestMemory memory, IMsiController msi, Func<int, IInterruptLine> intx, IDoorbellBinder? doorbells,
        IIrqfdRoutes? irqfds)
    {
        _memory = memory;
        _msi = msi;
        _intx = intx;
        _doorbells = doorbells;
        _irqfds = irqfds;
    }

    /// <summary>Where MSI messages go (the root ports' too).</summary>
    public KvmMsiController Msi { get; private set; } = null!;

    /// <summary>A virtio-pci function for <paramref name="device"/> whose INTA# reaches the guest as the pin of
    /// slot <paramref name="intxSlot"/> of pcie.0 (its own slot, or its root port's: behind a port, device 0's
    /// INTA# swizzles to the port's INTA#).</summary>
    public VirtioPciFunction NewFunction(VirtioDevice device, int intxSlot, bool multiFunction) =>
        new(device, _memory!, _intx!(intxSlot), _msi!, _doorbells, multiFunction, _irqfds);

    /// <summary>Puts every created device on its bus at its address: pcie.0 (<paramref name="root"/>) or the
    /// secondary bus of one of <paramref name="ports"/> (by id, with the port's slot on pcie.0), at slot 0 there. A
    /// taken, impossible or orphaned (function n without a multifunction function 0) address is a PciException.</summary>
    public void Attach(PciBus root, IReadOnlyDictionary<string, (PcieRootPort Port, int Slot)> ports)
    {
        var slots = Slots(root);
        var placed = _unattached.ToArray();
        for (int i = 0; i < placed.Length; i++)
        {
            var (device, placement) = placed[i];
            int slot = slots[i];
            bool behindPort = placement.Bus != PciPlacement.RootBus;
            var bus = behindPort ? ports[placement.Bus].Port.Secondary : root;
            var function = NewFunction(device, behindPort ? ports[placement.Bus].Slot : slot, placement.MultiFunction);
            _unattached.RemoveAt(0);
            _functions.Add(function);
            bus.Attach(slot, placement.Function, function);
            Addresses[device.Id] = (slot, placement.Function);
            function.Attach();
        }
        for (int i = 0; i < placed.Length; i++)
        {
            var placement = placed[i].Placement;
            int slot = slots[i];
            if (placement.Function == 0) continue;
            var bus = placement.Bus == PciPlacement.RootBus ? root : ports[placement.Bus].Port.Secondary;
            var first = bus.FunctionAt(slot, 0);
            if (first is null || !first.Config.IsMultiFunction)
                throw new PciException($"bus {placement.Bus}: address 0x{slot:x}.{placement.Function}: function 0 of the slot " +
                    $"{(first is null ? "is empty" : $"({first.Name}) lacks multifunction=on")}, so the guest would never probe it");
        }
    }

    /// <summary>Adds a hot-plugged function, which is owned from then on.</summary>
    public void Add(VirtioPciFunction function) => _functions.Add(function);

    /// <summary>Disposes a hot-unplugged function (and its device), reset first: a guest that powered the slot off
    /// without resetting the device leaves it running, its backend and queue fds in use.</summary>
    public void Release(VirtioPciFunction function)
    {
        _functions.Remove(function);
        try { function.Core.WriteStatus(0); }
        catch (Exception e) when (e is SysException or InvalidOperationException)
        {
            Sys.Log.Warn($"virtio-pci {function.Name}: reset before removal failed: {e.Message}");
        }
        function.Dispose();
    }

    /// <summary>Each device's slot: its addr=, or behind a root port 0, or on pcie.0 the first slot nobody took
    /// (neither the chipset nor a device).</summary>
    private int[] Slots(PciBus bus)
    {
        bool OnRoot(PciPlacement p) => p.Bus == PciPlacement.RootBus;
        var taken = new HashSet<int>();
        foreach (var (slot, _, _) in bus.Functions) taken.Add(slot);
        foreach (var (_, p) in _unattached)
            if (OnRoot(p) && p.Slot is { } slot) taken.Add(slot);
        int FirstFree()
        {
            for (int s = 1; s < PciBus.Slots; s++)
                if (!taken.Contains(s)) return s;
            return -1;
        }
        var slots = new int[_unattached.Count];
        for (int i = 0; i < slots.Length; i++)
        {
            var p = _unattached[i].Placement;
            int slot = p.Slot ?? (OnRoot(p) ? FirstFree() : 0);
            if (slot < 0) throw new PciException($"bus {PciPlacement.RootBus}: no free slot left for device '{_unattached[i].Device.Id}'");
            if (OnRoot(p)) taken.Add(slot);
            slots[i] = slot;
        }
        return slots;
    }

    public void Dispose()
    {
        foreach (var f in _functions) f.Dispose(); // disposes the device
        foreach (var (device, _) in _unattached) device.Dispose();
        foreach (var c in _chardevs) c.Dispose();
    }
}
