using StratoVirt.Boot;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>
/// What the x86 machine types build the same way: the KVM VM with its in-kernel irqchip, PIT and RAM slots, the
/// PC legacy devices (COM1, i8042, CMOS RTC), chardevs, and the vCPUs in their starting state.
/// </summary>
internal static class PcPlatform
{
    private const uint SerialIrq = 4;
    private const ulong SerialPortBase = 0x3F8;

    /// <summary>Opens /dev/kvm, checks what <paramref name="machine"/> needs, and creates the VM with the
    /// in-kernel irqchip and PIT and every RAM region of <paramref name="memory"/> as a memory slot.</summary>
    public static (KvmSystem Kvm, KvmVm Vm) CreateVm(VirtualMachine vm, GuestMemory memory, string machine)
    {
        var kvm = vm.Own(KvmSystem.Open());
        foreach (var cap in new[] { KvmCap.Irqchip, KvmCap.UserMemory, KvmCap.Pit2, KvmCap.ExtCpuid })
            if (kvm.CheckExtension(cap) == 0)
                throw new KvmUnavailableException($"this host's KVM lacks the {cap} capability, which the {machine} needs");
        int max = Math.Max(kvm.CheckExtension(KvmCap.MaxVcpus), kvm.CheckExtension(KvmCap.NrVcpus));
        if (max > 0 && vm.Config.Cpus.Count > max)
            throw new KvmUnavailableException($"-smp {vm.Config.Cpus.Count} exceeds this host's KVM limit of {max} vCPUs");
        var kvmVm = vm.Own(kvm.CreateVm());
        vm.SetClock(kvmVm);
        if (!kvmVm.TrySetIdentityMapAddress(Layout.KvmIdentityMap))
            Log.Debug("KVM_SET_IDENTITY_MAP_ADDR refused; this host does not need it");
        try { kvmVm.SetTssAddress(Layout.KvmTss); }
        catch (SysException e) { Log.Debug($"{e.Message}; continuing without a real-mode TSS"); }
        kvmVm.CreateIrqchip();
        kvmVm.CreatePit2();
        vm.AddStateful(new KvmVmStateful(kvmVm));
        uint slot = 0;
        foreach (var region in memory.Regions)
            kvmVm.SetUserMemoryRegion(slot++, region.GuestAddress, region.Size, region.HostAddress);
        return (kvm, kvmVm);
    }

    /// <summary>Opens a -chardev backend; <paramref name="serial"/> is the serial port's, if opened already.</summary>
    public static Chardev OpenChardev(ChardevConfig config, Chardev? serial) => config switch
    {
        ChardevConfig.Stdio when serial is StdioChardev =>
            throw new MachineConfigException($"chardev '{config.Id}': stdio is already the serial port's (-serial stdio)"),
        ChardevConfig.Stdio => new StdioChardev(config.Id),
        ChardevConfig.File f => new FileChardev(f.Id, f.Path),
        ChardevConfig.UnixSocket u => new SocketChardev(u.Id, u.Path),
        ChardevConfig.Pty => new PtyChardev(config.Id),
        _ => throw new MachineConfigException($"chardev '{config.Id}': unsupported backend"),
    };

    /// <summary>COM1 on <paramref name="serial"/> (if any), the i8042 (whose reset command resets the VM) and the
    /// CMOS RTC.</summary>
    public static PcLegacyDevices AddLegacyDevices(VirtualMachine vm, KvmVm kvmVm, Chardev? serial)
    {
        Serial16550? uart = null;
        if (serial is not null)
        {
            var port = new SerialPort(new KvmInterruptLine(kvmVm, SerialIrq, vm.VmFailed), serial);
            uart = port.Uart;
            vm.Pio.Register(SerialPortBase, Serial16550.Length, uart);
            vm.AttachSerialPort(port); // input is served once the main loop runs
            vm.AddStateful(uart);
        }
        var i8042 = new I8042(() => vm.RequestReset(MachineExit.GuestReset("guest requested a reset (i8042)")));
        vm.Pio.Register(0x60, 1, i8042.DataPort); // one port each: 0x61 belongs to the in-kernel PIT
        vm.Pio.Register(0x64, 1, i8042.CommandPort);
        vm.AddStateful(i8042);
        var rtc = new CmosRtc(() => DateTime.UtcNow);
        vm.Pio.Register(0x70, 2, rtc);
        vm.AddStateful(rtc);
        return new PcLegacyDevices(uart, i8042, rtc);
    }

    /// <summary>Lets KVM queue the console's writes to COM1's transmit register (<see cref="SerialTransmitQueueing"/>).
    /// After <see cref="CreateVcpus"/>.</summary>
    public static void QueueSerialTransmit(VirtualMachine vm, KvmSystem kvm, KvmVm kvmVm, Serial16550? uart) =>
        SerialTransmitQueueing.Enable(vm, kvm, kvmVm, uart, SerialPortBase, 1, pio: true);

    /// <summary>Creates the vCPUs, each with its saved-state record; vCPU 0 starts at the kernel's entry, or at
    /// the reset vector for <paramref name="firmware"/> (neither when the state comes from a snapshot), the others
    /// wait for the guest's INIT and SIPI.</summary>
    public static void CreateVcpus(VirtualMachine vm, KvmSystem kvm, KvmVm kvmVm, BootEntry? entry, bool firmware = false)
    {
        var supported = kvm.GetSupportedCpuid();
        bool tscDeadline = kvm.CheckExtension(KvmCap.TscDeadlineTimer) > 0;
        var stateSupport = VcpuStateSupport.Probe(kvm);
        for (int id = 0; id < vm.Config.Cpus.Count; id++)
        {
            var kvmVcpu = kvmVm.CreateVcpu(id);
            vm.AddVcpu(kvmVcpu);
            vm.AddStateful(new KvmVcpuStateful(kvmVcpu, stateSupport));
            VcpuSetup.ConfigureCommon(kvmVcpu, CpuidBuilder.ForVcpu(supported, id, vm.Config.Cpus, tscDeadline));
            if (id == 0 && entry is { } boot) VcpuSetup.ConfigureBoot(kvmVcpu, boot);
            else if (id == 0 && firmware) VcpuSetup.ConfigureResetVector(kvmVcpu);
        }
    }
}

/// <summary>The PC legacy devices of a machine, for its reset.</summary>
internal sealed record PcLegacyDevices(Serial16550? Uart, I8042 I8042, CmosRtc Rtc)
{
    /// <summary>Each device to its power-on state (the RTC keeps its time and CMOS RAM).</summary>
    public void Reset()
    {
        Uart?.Reset();
        I8042.Reset();
        Rtc.Reset();
    }
}
