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
/// ICH9's ACPI registers (PM1, PM timer, reset control at 0xCF9), the q35 ACPI tables and the vCPUs.
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
        if (flash.Count == 0)
        {
            var spec = new BootSpec(kernel!, _config.InitrdPath, _config.CommandLine, WriteFirmwareTables(memory),
                [(Q35Layout.EcamBase, Q35Layout.EcamSize)]);
            entry = BootLoader.Load(memory, spec);
        }

        var (kvm, kvmVm) = PcPlatform.CreateVm(_vm, memory, "q35 machine");
        var rtc = PcPlatform.AddLegacyDevices(_vm, kvmVm, _serialChardev);
        rtc.SetMemorySize(memory.Regions[0].End, memory.Regions.Count > 1 ? memory.Regions[1].Size : 0);
        var bus = AddChipset();
        AddVirtioDevices(bus, kvm, kvmVm, memory);
        if (flash.Count > 0)
        {
            Q35Firmware.MapFlash(_vm, kvm, kvmVm, flash, (uint)memory.Regions.Count);
            var fwCfg = Q35Firmware.CreateFwCfg(memory, new Q35Firmware.Contents(_config, kernel,
                _config.Acpi ? AcpiConfig(Q35Firmware.Mmio32End - Q35Layout.Mmio32Base) : null,
                Q35Firmware.BootEntries(_config, _devices.Addresses)));
            _vm.Pio.Register(FwCfg.PortBase, FwCfg.Length, fwCfg);
        }
        PcPlatform.CreateVcpus(_vm, kvm, kvmVm, entry, firmware: flash.Count > 0);
    }

    /// <summary>pcie.0 with the MCH at 00:00.0 and the LPC bridge at 00:1f.0, its two configuration mechanisms,
    /// and the LPC bridge's ACPI registers.</summary>
    private PciBus AddChipset()
    {
        var bus = new PciBus("pcie.0", _vm.Pio, _vm.Mmio);
        _vm.PciRoot = bus;
        bus.Attach(0, 0, new Q35HostBridge(Q35Layout.EcamBase));
        bus.Attach(Ich9LpcBridge.Slot, 0, new Ich9LpcBridge(Ich9PowerManagement.DefaultBase));
        _vm.Pio.Register(PciConfigPorts.Base, PciConfigPorts.Length, new PciConfigPorts(bus,
            () => _vm.RequestExit(MachineExit.GuestReset("guest requested a reset (ICH9 reset control)"))));
        _vm.Mmio.Register(Q35Layout.EcamBase, PciEcam.Size, new PciEcam(bus));
        _vm.Pio.Register(Ich9PowerManagement.DefaultBase, Ich9PowerManagement.Length, new Ich9PowerManagement(
            () => _vm.RequestExit(MachineExit.GuestPowerOff("guest powered off (ACPI S5)"))));
        return bus;
    }

    /// <summary>The virtio-pci functions on <paramref name="bus"/>, their BARs placed in the 32-bit window as
    /// firmware would (the guest may move them), and the iothreads that serve them.</summary>
    private void AddVirtioDevices(PciBus bus, KvmSystem kvm, KvmVm kvmVm, GuestMemory memory)
    {
        bool ioeventfd = kvm.CheckExtension(KvmCap.Ioeventfd) > 0;
        if (_config.Devices.Count > 0 && !ioeventfd) Sys.Log.Info("KVM lacks ioeventfd; virtio queue notifications exit to the VMM");
        _devices.Attach(bus, kvmVm, memory, ioeventfd, _vm.VmFailed);
        ulong next = Q35Layout.Mmio32Base;
        var address = new byte[8];
        foreach (var (slot, function, device) in bus.Functions)
        {
            foreach (var bar in device.Config.Bars)
            {
                if (bar.Kind == PciBarKind.Io) continue;
                next = (next + bar.Size - 1) & ~(bar.Size - 1);
                BinaryPrimitives.WriteUInt64LittleEndian(address, next);
                bus.WriteConfig(slot << 3 | function, PciConfigSpace.Bar0 + 4 * bar.Index,
                    address.AsSpan(0, bar.Kind == PciBarKind.Memory64 ? 8 : 4));
                next += bar.Size;
            }
        }
        _vm.StartIoThreads();
    }

    /// <summary>What the q35 ACPI tables describe, for direct boot and for the firmware's table loader alike; the
    /// 32-bit window is <paramref name="mmio32Size"/> bytes from its base.</summary>
    private Q35AcpiConfig AcpiConfig(ulong mmio32Size) => new(_config.Cpus.Count, AcpiPorts, SciIrq,
        Ich9PowerManagement.S5SleepType, Q35Layout.EcamBase, Q35Layout.Mmio32Base, mmio32Size,
        Q35Layout.Mmio64Base(_config.MemorySize), Q35Layout.Mmio64Size);

    /// <summary>Writes the MP table and, unless disabled, the q35 ACPI tables; returns the RSDP address.</summary>
    private ulong? WriteFirmwareTables(GuestMemory memory)
    {
        int cpus = _config.Cpus.Count;
        memory.Write(MpTable.DefaultAddress, MpTable.Build(MpTable.DefaultAddress, cpus));
        if (!_config.Acpi) return null;
        var acpi = Q35Tables.Build(AcpiTables.DefaultAddress, AcpiConfig(Q35Layout.Mmio32Size));
        if ((ulong)acpi.Length > MpTable.DefaultAddress - AcpiTables.DefaultAddress)
            throw new BootException("ACPI tables overflow their area below the MP table");
        memory.Write(AcpiTables.DefaultAddress, acpi);
        return AcpiTables.DefaultAddress;
    }
}
