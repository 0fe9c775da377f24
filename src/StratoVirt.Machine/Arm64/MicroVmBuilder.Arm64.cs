using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Boot.Arm64;
using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Kvm.Arm64;
using StratoVirt.Memory;

namespace StratoVirt.Machine;

/// <summary>
/// The aarch64 microVM (upstream's map, <see cref="ArmLayout"/>): RAM from 0x4000_0000 holding the device tree, the
/// Image and the initrd; the in-kernel GICv3; PL011 and PL031; the same virtio-mmio devices, QMP and hotplug slots as
/// on x86_64. vCPU 0 enters the Image at EL1 with x0 pointing at the device tree; the others start powered off and
/// are brought up by the guest through KVM's in-kernel PSCI, which also turns SYSTEM_OFF and SYSTEM_RESET into the
/// system events that end the VM.
/// </summary>
public sealed partial class MicroVmBuilder
{
    /// <summary>What the aarch64 microVM refuses before anything is made.</summary>
    private static void CheckArm64(MachineConfig config)
    {
        if (config.Cpus.Count > ArmLayout.MaxCpus)
            throw new MachineConfigException(
                $"-smp {config.Cpus.Count}: the aarch64 microVM takes at most {ArmLayout.MaxCpus} vCPUs (its GICv3 redistributor space)");
        if (config.Incoming is not null)
            throw new MachineConfigException("-incoming: the aarch64 microVM cannot restore snapshots yet");
    }

    /// <summary>virtio-mmio slot n at 0x0A00_0000 + n x 0x200 on SPI 2 + n (an irqfd takes the SPI number;
    /// KVM_IRQ_LINE the SPI-typed interrupt id).</summary>
    private static VirtioMmioSlots ArmVirtioSlots() => new(ArmVirtioWindow, ArmIrq.Spi);

    internal static VirtioMmioWindow ArmVirtioWindow(int slot) =>
        new(ArmLayout.VirtioMmioSlot(slot), (uint)ArmLayout.VirtioMmioSize, ArmLayout.VirtioMmioFirstSpi + (uint)slot);

    private void BuildArm64(ArmKernelImage kernel)
    {
        var memory = _vm.Own(new GuestMemory([(ArmLayout.RamBase, _config.MemorySize)], RamBackingOf(_config)));
        _vm.Memory = memory;
        _vm.SnapshotUnsupported = "the aarch64 microVM cannot save its vCPU and GIC state in a snapshot yet";
        _vm.Own(_devices);
        OpenSerialChardev();
        CreateVirtioDevices();
        var description = new ArmMachineDescription(_config.MemorySize, _config.Cpus.Count, KernelCommandLine(),
            _devices.Created.Count);
        var plan = ArmBootLoader.Load(memory, kernel, _config.InitrdPath, p => MicroVmDeviceTree.Build(description, p));

        _kvm = _vm.Own(KvmSystem.Open());
        foreach (var cap in new[] { KvmCap.UserMemory, KvmCap.Irqfd, KvmCap.Ioeventfd })
            if (_kvm.CheckExtension(cap) == 0)
                throw new KvmUnavailableException($"this host's KVM lacks the {cap} capability, which the aarch64 microVM needs");
        int max = Math.Max(_kvm.CheckExtension(KvmCap.MaxVcpus), _kvm.CheckExtension(KvmCap.NrVcpus));
        if (max > 0 && _config.Cpus.Count > max)
            throw new KvmUnavailableException($"-smp {_config.Cpus.Count} exceeds this host's KVM limit of {max} vCPUs");
        _kvmVm = _vm.Own(_kvm.CreateVm());
        uint slot = 0;
        foreach (var region in memory.Regions)
            _kvmVm.SetUserMemoryRegion(slot++, region.GuestAddress, region.Size, region.HostAddress);

        // The GIC's redistributors are laid out per vCPU, so every vCPU exists before the GIC is initialised.
        CreateArmVcpus(plan);
        CreateGicV3();
        AddArmLegacyDevices();
        AttachVirtioDevices(memory);
    }

    private void CreateArmVcpus(ArmBootPlan plan)
    {
        var target = _kvmVm.PreferredTarget();
        for (int id = 0; id < _config.Cpus.Count; id++)
        {
            var vcpu = _kvmVm.CreateVcpu(id);
            _vm.AddVcpu(vcpu);
            vcpu.ArmInit(target, ArmVcpuFeatures.Psci02 | (id == 0 ? ArmVcpuFeatures.None : ArmVcpuFeatures.PowerOff));
            if (id != 0) continue;
            // booting.rst: MMU and caches off (KVM's reset state), x0 = the device tree, x1-x3 = 0.
            vcpu.SetOneReg(ArmCoreRegister.Pstate, ArmCoreRegister.KernelEntryPstate);
            vcpu.SetOneReg(ArmCoreRegister.Pc, plan.KernelAddress);
            vcpu.SetOneReg(ArmCoreRegister.X(0), plan.DeviceTree);
        }
    }

    private void CreateGicV3()
    {
        var gic = _vm.Own(_kvmVm.CreateDevice(VgicV3.DeviceType, "GICv3"));
        gic.SetAttribute(VgicV3.GroupAddress, VgicV3.AddressDistributor, ArmLayout.GicDistributor, "distributor address");
        gic.SetAttribute(VgicV3.GroupAddress, VgicV3.AddressRedistributor, ArmLayout.GicRedistributor, "redistributor address");
        gic.SetAttribute(VgicV3.GroupControl, VgicV3.ControlInit, "init");
    }

    /// <summary>PL011 on the serial chardev (if any), its console's writes to DR queued by KVM while it polls
    /// (<see cref="SerialTransmitQueueing"/>), and PL031, each on its SPI. After the vCPUs.</summary>
    private void AddArmLegacyDevices()
    {
        if (_serialChardev is { } chardev)
        {
            var line = new KvmInterruptLine(_kvmVm, ArmIrq.Spi(ArmLayout.Pl011Spi), _vm.VmFailed);
            var port = new SerialPort<Pl011>(chardev, c => new Pl011(line, c));
            _vm.Mmio.Register(ArmLayout.Pl011, ArmLayout.PrimeCellSize, port.Uart);
            _vm.AttachSerialPort(port); // input is served once the main loop runs
            // DR is the first register; a console writes it 16 or 32 bits wide.
            SerialTransmitQueueing.Enable(_vm, _kvm, _kvmVm, port.Uart, ArmLayout.Pl011, 4, pio: false);
        }
        var rtc = new Pl031(new KvmInterruptLine(_kvmVm, ArmIrq.Spi(ArmLayout.Pl031Spi), _vm.VmFailed));
        _vm.Mmio.Register(ArmLayout.Pl031, ArmLayout.PrimeCellSize, rtc);
    }
}
