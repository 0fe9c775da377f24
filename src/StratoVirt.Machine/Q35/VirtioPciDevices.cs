using StratoVirt.Boot;
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
/// The q35 machine's virtio-pci functions on pcie.0: each -device virtio-*-pci at its addr= (or the first free
/// slot), INTA# on the GSI of <see cref="Q35Layout.IntxGsi"/> (as the DSDT's _PRT says), MSI-X through KVM_SIGNAL_MSI
/// (and through GSI routes and irqfds for the call eventfds of vhost and vhost-user backends), queue notifications
/// through KVM ioeventfd when the host has it. Owns the functions, then the chardevs they use.
/// </summary>
internal sealed class VirtioPciDevices : IDisposable
{
    private readonly List<VirtioPciFunction> _functions = [];
    private readonly List<(VirtioDevice Device, PciPlacement Placement)> _unattached = [];
    private readonly List<Chardev> _chardevs = [];

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
            }, loop) { SharedMemory = vm.Memory.Regions.All(r => r.Shared) });
            _unattached.Add((device, c.Pci ?? throw new InvalidOperationException($"device '{c.Id}' has no PCI placement")));
            if (device is VirtioBalloon balloon) vm.SetBalloon(balloon);
            if (device is VirtioBlock block) vm.WatchBlock(block);
            if (device is VhostUserDevice vhostUser) vm.WatchVhostUser(vhostUser);
        }
    }

    /// <summary>Puts every created device on <paramref name="bus"/> at its address; a taken, impossible or
    /// orphaned (function n without a multifunction function 0) address is a PciException.</summary>
    public void Attach(PciBus bus, KvmVm kvmVm, GuestMemory memory, bool ioeventfd, Action<string> vmFailed)
    {
        var msi = new KvmMsiController(kvmVm, vmFailed);
        var doorbells = ioeventfd ? new KvmDoorbells(kvmVm) : null;
        var irqfds = kvmVm.System.CheckExtension(KvmCap.Irqfd) > 0 && kvmVm.System.CheckExtension(KvmCap.IrqRouting) > 0
            ? new KvmIrqfdRoutes(kvmVm) : null;
        var slots = Slots(bus);
        var placed = _unattached.Select((d, i) => (d.Device, Slot: slots[i], d.Placement)).ToList();
        foreach (var (device, slot, placement) in placed)
        {
            var function = new VirtioPciFunction(device, memory, new KvmInterruptLine(kvmVm, Q35Layout.IntxGsi(slot, 0), vmFailed), msi,
                doorbells, placement.MultiFunction, irqfds);
            _unattached.RemoveAt(0);
            _functions.Add(function);
            bus.Attach(slot, placement.Function, function);
            Addresses[device.Id] = (slot, placement.Function);
            function.Attach();
        }
        foreach (var (_, slot, placement) in placed)
        {
            if (placement.Function == 0) continue;
            var first = bus.Functions.FirstOrDefault(f => f.Slot == slot && f.Function == 0).Device;
            if (first is null || !first.Config.IsMultiFunction)
                throw new PciException($"bus {PciPlacement.RootBus}: address 0x{slot:x}.{placement.Function}: function 0 of the slot " +
                    $"{(first is null ? "is empty" : $"({first.Name}) lacks multifunction=on")}, so the guest would never probe it");
        }
    }

    /// <summary>Each device's slot: its addr=, or the first slot nobody took (neither the chipset nor a device).</summary>
    private int[] Slots(PciBus bus)
    {
        var taken = bus.Functions.Select(f => f.Slot)
            .Concat(_unattached.Where(d => d.Placement.Slot is not null).Select(d => d.Placement.Slot!.Value)).ToHashSet();
        var slots = new int[_unattached.Count];
        for (int i = 0; i < slots.Length; i++)
        {
            int slot = _unattached[i].Placement.Slot ?? Enumerable.Range(1, PciBus.Slots - 1).FirstOrDefault(s => !taken.Contains(s), -1);
            if (slot < 0) throw new PciException($"bus {PciPlacement.RootBus}: no free slot left for device '{_unattached[i].Device.Id}'");
            taken.Add(slot);
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
