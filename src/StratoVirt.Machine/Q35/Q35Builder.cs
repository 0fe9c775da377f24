using System.Buffers.Binary;
using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Firmware;
using StratoVirt.Devices.Legacy;
using StratoVirt.Devices.Pci;
using StratoVirt.Kvm;
using StratoVirt.Memory;

namespace StratoVirt.Machine;

/// <summary>
/// Builds the x86_64 q35 standard VM on the machine core, for direct kernel boot or, with -drive if=pflash, for
/// UEFI firmware (<see cref="Q35Firmware"/>): guest RAM in upstream's q35 map
/// (below 2 GiB and from 4 GiB), the in-kernel irqchip and PIT, the PC legacy devices, the PCI Express root
/// bus pcie.0 (reached through 0xCF8/0xCFC and ECAM) with the MCH host bridge and the ICH9 LPC bridge, the
/// ICH9's ACPI registers (PM1 with the fixed power button on the SCI, PM timer, reset control at 0xCF9), the q35
/// ACPI tables and the vCPUs. Unlike the microVM it resets in place (unless -no-reboot): a guest reset or QMP
/// system_reset puts every device, the interrupt controllers, the boot payload and the vCPUs back to their
/// power-on state, and the guest boots again in the same process with its RAM kept.
/// </summary>
public sealed class Q35Builder
{
    private const ushort SciIrq = 9;
    private const byte ResetValue = 0x06; // RST_CPU | SYS_RST at 0xCF9

    private readonly MachineConfig _config;
    private readonly VirtualMachine _vm;
    private readonly VirtioPciDevices _devices = new();
    private Chardev? _serialChardev;

    private Q35Builder(MachineConfig config)
    {
        _config = config;
        _vm = new VirtualMachine(config);
    }

    /// <summary>Builds the whole machine; nothing runs until <see cref="VirtualMachine.Run"/>. On failure nothing
    /// is left open.</summary>
    public static VirtualMachine Build(MachineConfig config)
    {
        var kernel = config.KernelPath is { } path ? KernelImage.Open(path) : null;
        var builder = new Q35Builder(config);
        try
        {
            builder.Build(kernel);
            return builder._vm;
        }
        catch
        {
            builder._vm.Dispose();
            throw;
        }
    }

    /// <summary>The ICH9's fixed ACPI registers as the FADT names them.</summary>
    public static FixedAcpiPorts AcpiPorts => new(Ich9PowerManagement.DefaultBase, Ich9PowerManagement.DefaultBase + 4,
        Ich9PowerManagement.DefaultBase + 8, (ushort)(PciConfigPorts.Base + 1), ResetValue);

    private void Build(KernelImage? kernel)
    {
        var ram = _config.DumpGuestCore ? _config.Ram : _config.Ram with { Dumpable = false };
        var memory = _vm.Own(new GuestMemory(Q35Layout.RamRegions(_config.MemorySize), ram));
        _vm.Memory = memory;
        if (_config.Serial is { } serial)
        {
            try { _serialChardev = _vm.Own(PcPlatform.OpenChardev(serial, null)); }
            catch (ChardevException e) { throw new MachineConfigException($"serial port: {e.Message}"); }
            if (_serialChardev is PtyChardev pty) Sys.Log.WriteRaw(2, $"char device redirected to {pty.PtyPath} (label {serial.Id})\n");
        }
        _vm.Own(_devices);
        _devices.Create(_vm, _serialChardev);
        var flash = Q35Firmware.OpenFlash(_config.Pflash);
        foreach (var image in flash) _vm.Own(image);
        BootEntry? entry = null;
        BootSpec? spec = null;
        if (flash.Count == 0)
        {
            spec = new BootSpec(kernel!, _config.InitrdPath, _config.CommandLine, WriteFirmwareTables(memory),
                [(Q35Layout.EcamBase, Q35Layout.EcamSize)]);
            entry = BootLoader.Load(memory, spec);
        }

        var (kvm, kvmVm) = PcPlatform.CreateVm(_vm, memory, "q35 machine");
        var interruptControllers = X86VmState.Capture(kvmVm);
        var legacy = PcPlatform.AddLegacyDevices(_vm, kvmVm, _serialChardev);
        legacy.Rtc.SetMemorySize(memory.Regions[0].End, memory.Regions.Count > 1 ? memory.Regions[1].Size : 0);
        var (bus, configPorts, pm) = AddChipset(kvmVm);
        bool ioeventfd = kvm.CheckExtension(KvmCap.Ioeventfd) > 0;
        if (_config.Devices.Count > 0 && !ioeventfd) Sys.Log.Info("KVM lacks ioeventfd; virtio queue notifications exit to the VMM");
        _devices.Connect(kvmVm, memory, ioeventfd, _vm.VmFailed);
        var hotplug = _vm.Own(new PcieHotplug(_vm, _devices));
        _vm.Hotplug = hotplug;
        AddRootPorts(bus, kvmVm, hotplug);
        AddVirtioDevices(bus, hotplug.Ports);
        IReadOnlyList<Pflash> flashDevices = [];
        FwCfg? fwCfg = null;
        if (flash.Count > 0)
        {
            flashDevices = Q35Firmware.MapFlash(_vm, kvm, kvmVm, flash, (uint)memory.Regions.Count);
            fwCfg = Q35Firmware.CreateFwCfg(memory, new Q35Firmware.Contents(_config, kernel,
                _config.Acpi ? AcpiConfig(Q35Firmware.Mmio32End - Q35Layout.Mmio32Base, firmware: true) : null,
                Q35Firmware.BootEntries(_config, _devices.Addresses)));
            _vm.Pio.Register(FwCfg.PortBase, FwCfg.Length, fwCfg);
        }
        _vm.TripleFaultResets = true;
        PcPlatform.CreateVcpus(_vm, kvm, kvmVm, entry, firmware: flash.Count > 0);
        PcPlatform.QueueSerialTransmit(_vm, kvm, kvmVm, legacy.Uart);
        _vm.SetPowerButton(pm.PressPowerButton);
        if (_config.NoReboot) return;
        var support = VcpuStateSupport.Probe(kvm);
        var vcpus = new List<(KvmVcpu Vcpu, X86VcpuState State)>(_vm.Vcpus.Count);
        foreach (var v in _vm.Vcpus)
        {
            var vcpu = (KvmVcpu)v.Handle;
            vcpus.Add((vcpu, X86VcpuState.Capture(vcpu, support)));
        }
        _vm.SetReset(() =>
        {
            // Devices first (stopping a device may still raise its interrupt), then the interrupt controllers
            // they drive, then what the guest boots from (the direct-boot payload again, or the firmware's
            // interfaces back in their power-on modes), then the vCPUs. Guest RAM and the flash files are kept.
            configPorts.Reset();
            bus.Reset();
            PlaceBarsAndWindows(bus, hotplug.Ports);
            pm.Reset();
            legacy.Reset();
            interruptControllers.ApplyInterruptControllers(kvmVm);
            if (spec is not null)
            {
                WriteFirmwareTables(memory);
                BootLoader.Load(memory, spec);
            }
            fwCfg?.Reset();
            foreach (var device in flashDevices) device.Reset();
            foreach (var (vcpu, state) in vcpus) state.Apply(vcpu);
        });
    }

    /// <summary>pcie.0 with the MCH at 00:00.0 and the LPC bridge at 00:1f.0, its two configuration mechanisms
    /// (0xCF9, beside them, resets the machine), and the LPC bridge's ACPI registers with the SCI.</summary>
    private (PciBus Bus, PciConfigPorts ConfigPorts, Ich9PowerManagement Pm) AddChipset(KvmVm kvmVm)
    {
        var bus = new PciBus("pcie.0", _vm.Pio, _vm.Mmio);
        _vm.PciRoot = bus;
        bus.Attach(0, 0, new Q35HostBridge(Q35Layout.EcamBase));
        bus.Attach(Ich9LpcBridge.Slot, 0, new Ich9LpcBridge(Ich9PowerManagement.DefaultBase));
        var configPorts = new PciConfigPorts(bus,
            () => _vm.RequestReset(MachineExit.GuestReset("guest requested a reset (ICH9 reset control)")));
        _vm.Pio.Register(PciConfigPorts.Base, PciConfigPorts.Length, configPorts);
        _vm.Mmio.Register(Q35Layout.EcamBase, PciEcam.Size, new PciEcam(bus));
        var pm = new Ich9PowerManagement(() => _vm.RequestExit(MachineExit.GuestPowerOff("guest powered off (ACPI S5)")),
            new KvmInterruptLine(kvmVm, SciIrq, _vm.VmFailed));
        _vm.Pio.Register(Ich9PowerManagement.DefaultBase, Ich9PowerManagement.Length, pm);
        return (bus, configPorts, pm);
    }

    /// <summary>The -device pcie-root-port functions on pcie.0, each with its secondary bus named by its id. Their
    /// INTA# is their slot's pin; what they take off their bus goes to <paramref name="hotplug"/>.</summary>
    private void AddRootPorts(PciBus root, KvmVm kvmVm, PcieHotplug hotplug)
    {
        foreach (var c in _config.RootPorts)
        {
            int slot = c.Placement.Slot ?? throw new InvalidOperationException($"root port '{c.Id}' has no slot");
            var port = new PcieRootPort(c.Id, c.Port, c.Placement.MultiFunction, new PciBus(c.Id, _vm.Pio, _vm.Mmio),
                new KvmInterruptLine(kvmVm, Q35Layout.IntxGsi(slot, 0), _vm.VmFailed), _devices.Msi, _config.FastUnplug, hotplug.Removed);
            root.Attach(slot, c.Placement.Function, port);
            hotplug.AddPort(port, slot);
        }
    }

    /// <summary>The virtio-pci functions on pcie.0 and behind the root ports, laid out as firmware would
    /// (<see cref="PlaceBarsAndWindows"/>), and the iothreads that serve them.</summary>
    private void AddVirtioDevices(PciBus root, IReadOnlyDictionary<string, (PcieRootPort Port, int Slot)> ports)
    {
        _devices.Attach(root, ports);
        PlaceBarsAndWindows(root, ports);
        _vm.StartIoThreads();
    }

    /// <summary>What firmware does at power-on (the guest may change all of it): the memory BARs placed in the 32-bit
    /// window, each root port in command-line order given the next bus number and a memory window of at least
    /// <see cref="RootPortWindow"/> around the BARs behind it (its I/O and prefetchable windows closed), and a port
    /// with a device in its slot powered with its link up.</summary>
    private void PlaceBarsAndWindows(PciBus root, IReadOnlyDictionary<string, (PcieRootPort Port, int Slot)> ports)
    {
        ulong next = Q35Layout.Mmio32Base;
        PlaceBars(root, ref next);
        byte number = 1;
        foreach (var c in _config.RootPorts)
        {
            var port = ports[c.Id].Port;
            int devfn = c.Placement.Slot!.Value << 3 | c.Placement.Function;
            root.WriteConfig(devfn, PciConfigSpace.PrimaryBus, [0, number, number]);
            next = AlignUp(next, WindowGranule);
            ulong window = next;
            PlaceBars(port.Secondary, ref next);
            next = Math.Max(AlignUp(next, WindowGranule), window + RootPortWindow);
            var windows = new byte[12];
            BinaryPrimitives.WriteUInt16LittleEndian(windows, 0x00F0); // I/O base above its limit: closed
            BinaryPrimitives.WriteUInt16LittleEndian(windows.AsSpan(4), (ushort)(window >> 16));
            BinaryPrimitives.WriteUInt16LittleEndian(windows.AsSpan(6), (ushort)((next - 1) >> 16));
            BinaryPrimitives.WriteUInt16LittleEndian(windows.AsSpan(8), 0xFFF0); // prefetchable: closed
            root.WriteConfig(devfn, PciConfigSpace.IoBase, windows);
            if (port.Secondary.FirstFunction is not null) port.ColdPlugged();
            number++;
        }
    }

    /// <summary>The memory window each root port gets at least (Linux's default reserve for a hotplug bridge).</summary>
    private const ulong RootPortWindow = 2UL << 20;
    private const ulong WindowGranule = 1UL << 20;

    private static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);

    /// <summary>Writes the memory BARs of the functions on <paramref name="bus"/> one after the other from
    /// <paramref name="next"/>, each aligned to its size.</summary>
    private static void PlaceBars(PciBus bus, ref ulong next)
    {
        var address = new byte[8];
        foreach (var (slot, function, device) in bus.Functions)
        {
            foreach (var bar in device.Config.Bars)
            {
                if (bar.Kind == PciBarKind.Io) continue;
                next = AlignUp(next, bar.Size);
                BinaryPrimitives.WriteUInt64LittleEndian(address, next);
                bus.WriteConfig(slot << 3 | function, PciConfigSpace.Bar0 + 4 * bar.Index,
                    address.AsSpan(0, bar.Kind == PciBarKind.Memory64 ? 8 : 4));
                next += bar.Size;
            }
        }
    }

    /// <summary>What the q35 ACPI tables describe, for direct boot and for the firmware's table loader alike; the
    /// 32-bit window is <paramref name="mmio32Size"/> bytes from its base. Under direct boot the buses are those
    /// <see cref="PlaceBarsAndWindows"/> numbers (pcie.0 and one per root port), which spares the guest's probe of
    /// every bus up to 255 (<see cref="Q35AcpiConfig"/>); firmware numbers the buses itself, so it gets all 256.</summary>
    private Q35AcpiConfig AcpiConfig(ulong mmio32Size, bool firmware) => new(_config.Cpus.Count, AcpiPorts, SciIrq,
        Ich9PowerManagement.S5SleepType, Q35Layout.EcamBase, Q35Layout.Mmio32Base, mmio32Size,
        Q35Layout.Mmio64Base(_config.MemorySize), Q35Layout.Mmio64Size,
        firmware ? byte.MaxValue : (byte)Math.Min(_config.RootPorts.Count, byte.MaxValue));

    /// <summary>Writes the MP table and, unless disabled, the q35 ACPI tables; returns the RSDP address.</summary>
    private ulong? WriteFirmwareTables(GuestMemory memory)
    {
        int cpus = _config.Cpus.Count;
        memory.Write(MpTable.DefaultAddress, MpTable.Build(MpTable.DefaultAddress, cpus));
        if (!_config.Acpi) return null;
        var acpi = Q35Tables.Build(AcpiTables.DefaultAddress, AcpiConfig(Q35Layout.Mmio32Size, firmware: false));
        if ((ulong)acpi.Length > MpTable.DefaultAddress - AcpiTables.DefaultAddress)
            throw new BootException("ACPI tables overflow their area below the MP table");
        memory.Write(AcpiTables.DefaultAddress, acpi);
        return AcpiTables.DefaultAddress;
    }
}
