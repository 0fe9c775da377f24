using System.Runtime.InteropServices;
using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Boot.Arm64;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Machine.Snapshot;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Machine;

/// <summary>
/// Builds the x86_64 microVM on the machine core: guest RAM in the microVM's map, the in-kernel irqchip and PIT,
/// the legacy devices (16550, i8042, CMOS RTC, ACPI power ports, boot timer), virtio-mmio slots (with the
/// replaceable hotplug slots when a monitor exists), ACPI and MP tables, a directly booted kernel and the vCPUs'
/// starting state. On arm64 hosts the same machine type is built in its aarch64 form (MicroVmBuilder.Arm64.cs).
/// </summary>
public sealed partial class MicroVmBuilder
{
    private readonly MachineConfig _config;
    private readonly VirtualMachine _vm;
    private readonly VirtioDeviceSet _devices;
    private KvmSystem _kvm = null!;
    private KvmVm _kvmVm = null!;
    private Chardev? _serialChardev;

    private MicroVmBuilder(MachineConfig config, VirtioMmioSlots slots)
    {
        _config = config;
        _devices = new VirtioDeviceSet(slots);
        _vm = new VirtualMachine(config);
    }

    /// <summary>Builds the whole machine for this host's architecture; nothing runs until
    /// <see cref="VirtualMachine.Run"/>. On failure nothing is left open.</summary>
    public static VirtualMachine Build(MachineConfig config)
    {
        bool arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        // The kernel is checked before anything is made.
        string kernelPath = config.KernelPath ?? throw new MachineConfigException("the microvm boots a kernel directly: -kernel is required");
        object kernel = arm64 ? ArmKernelImage.Open(kernelPath) : KernelImage.Open(kernelPath);
        if (arm64) CheckArm64(config);
        var builder = new MicroVmBuilder(config, arm64 ? ArmVirtioSlots() : new VirtioMmioSlots());
        try
        {
            if (kernel is ArmKernelImage image) builder.BuildArm64(image);
            else builder.Build((KernelImage)kernel);
            return builder._vm;
        }
        catch
        {
            builder._vm.Dispose();
            throw;
        }
    }

    private void Build(KernelImage kernel)
    {
        // A snapshot's state file is checked against the command line before anything is built.
        var snapshot = _config.Incoming is { } incoming ? ReadSnapshot(incoming) : null;
        // Guest RAM, kernel and initrd first: their errors need no KVM and leave nothing to undo. A restore takes
        // RAM, firmware tables and kernel from the snapshot's memory file instead.
        var ram = RamBackingOf(_config);
        var memory = _vm.Own(new GuestMemory(Layout.RamRegions(_config.MemorySize), ram));
        _vm.Memory = memory;
        if (_config.Incoming is { Mapped: false } source) MemoryImage.Load(memory, MemoryImage.PathIn(source.Directory));
        _vm.Own(_devices);
        OpenSerialChardev();
        CreateVirtioDevices();
        BootEntry? entry = null;
        if (snapshot is null)
        {
            var spec = new BootSpec(kernel, _config.InitrdPath, KernelCommandLine(), WriteFirmwareTables(memory));
            entry = BootLoader.Load(memory, spec);
        }

        (_kvm, _kvmVm) = PcPlatform.CreateVm(_vm, memory, "microVM");

        var legacy = AddLegacyDevices();
        AttachVirtioDevices(memory);
        PcPlatform.CreateVcpus(_vm, _kvm, _kvmVm, entry);
        PcPlatform.QueueSerialTransmit(_vm, _kvm, _kvmVm, legacy.Uart);
        if (snapshot is not null) _vm.Restore(snapshot, Path.Combine(_config.Incoming!.Directory, "state"));
    }

    /// <summary>The command line's RAM backing; a mapped restore instead maps the snapshot's memory file privately
    /// (copy-on-write), so restore time does not grow with the RAM and VMs restored from one snapshot share its
    /// pages until they write them.</summary>
    private static RamBacking RamBackingOf(MachineConfig config)
    {
        var ram = config.DumpGuestCore ? config.Ram : config.Ram with { Dumpable = false };
        if (config.Incoming is null) return ram;
        if (ram.Kind != RamBackingKind.Anonymous)
            throw new SnapshotException(
                "-incoming: guest RAM on a memfd or file (mem-share=on, -mem-path, a memory backend) cannot be restored from a snapshot");
        return config.Incoming.Mapped
            ? ram with { Kind = RamBackingKind.Snapshot, Path = MemoryImage.PathIn(config.Incoming.Directory) }
            : ram;
    }

    /// <summary>Reads the -incoming directory's state file and checks it against this command line.</summary>
    private SnapshotState ReadSnapshot(IncomingSnapshot incoming)
    {
        string path = Path.Combine(incoming.Directory, "state");
        byte[] bytes;
        try
        {
            using var file = HostFile.OpenRead(path);
            if (file.IsDirectory || file.Length > SnapshotState.MaxFileSize)
                throw new SnapshotException($"-incoming: {path} is not a snapshot state file");
            bytes = new byte[file.Length];
            if (!file.ReadExactly(bytes, 0)) throw new SnapshotException($"-incoming: {path} shrank while it was read");
        }
        catch (SysException e)
        {
            throw new SnapshotException($"-incoming: {e.Message}");
        }
        var state = SnapshotState.Decode(bytes, path);
        state.CheckMatches(_config, Layout.RamRegions(_config.MemorySize));
        return state;
    }

    /// <summary>Opens every device's host side (image files, taps, sockets) before anything else is set up, so that
    /// a bad path fails fast; each device gets the event loop (main or iothread) that will run it.</summary>
    private void CreateVirtioDevices()
    {
        if (_config.HotplugSlots) ReplaceableSlots.CheckCapacity(_config.Devices);
        else if (_config.Devices.Count > VirtioMmioSlots.Capacity)
            throw new MachineConfigException(
                $"{_config.Devices.Count} virtio devices requested; the microVM has {VirtioMmioSlots.Capacity} slots");
        foreach (var c in _config.Devices)
        {
            var loop = _vm.LoopFor(c.IoThread, c.Id);
            var device = VirtioDeviceFactory.Create(c, new VirtioDeviceResources(_config.MemorySize, OpenChardev, loop)
                { SharedMemory = _vm.MemoryShared });
            _devices.Add(device);
            if (device is VirtioBalloon balloon) _vm.SetBalloon(balloon);
            if (device is VhostUserDevice vhostUser) _vm.WatchVhostUser(vhostUser);
        }
        // Without a monitor nobody can hotplug: no empty slots to probe at boot.
        if (_config.HotplugSlots) ReserveHotplugSlots();
        // After the slots: a drive hotplugged later goes into one of their empty devices.
        foreach (var device in _devices.Created)
            if (device is VirtioBlock block) _vm.WatchBlock(block);
    }

    /// <summary>Puts the created blk and net devices into the replaceable slots, with empty devices in the rest,
    /// and the other devices after them.</summary>
    private void ReserveHotplugSlots()
    {
        List<VirtioBlock> blocks = [];
        List<VirtioNet> nets = [];
        List<VirtioDevice> others = [];
        foreach (var device in _devices.Created)
        {
            if (device is VirtioBlock block) blocks.Add(block);
            else if (device is VirtioNet net) nets.Add(net);
            else others.Add(device);
        }
        var slots = new ReplaceableSlots(blocks, nets, _vm.MainLoop, others.ConvertAll(d => d.Id),
            id => _vm.Raise(new MachineEvent.DeviceDeleted(id)));
        _vm.Own(slots);
        _vm.Hotplug = slots;
        _devices.Reorder([.. slots.Devices, .. others]);
    }

    /// <summary>Opens a -chardev backend; the machine disposes it after the devices (devices do not dispose theirs).</summary>
    private Chardev OpenChardev(ChardevConfig config)
    {
        var chardev = PcPlatform.OpenChardev(config, _serialChardev);
        _devices.Chardevs.Add(chardev);
        if (chardev is PtyChardev pty) Log.WriteRaw(2, $"char device redirected to {pty.PtyPath} (label {config.Id})\n");
        return chardev;
    }

    /// <summary>-append, plus virtio_mmio.device= for each device (kernels without ACPI find devices that way;
    /// kernels that read the DSDT ignore the parameter or log that the window is taken).</summary>
    private string KernelCommandLine()
    {
        // The aarch64 device tree lists the slots; virtio_mmio.device= would name x86 addresses.
        if (_devices.Created.Count == 0 || RuntimeInformation.ProcessArchitecture == Architecture.Arm64) return _config.CommandLine;
        string devices = VirtioMmioSlots.KernelParameters(_devices.Created.Count);
        return _config.CommandLine.Length == 0 ? devices : $"{_config.CommandLine} {devices}";
    }

    private void AttachVirtioDevices(GuestMemory memory)
    {
        bool irqfd = _kvm.CheckExtension(KvmCap.Irqfd) > 0, ioeventfd = _kvm.CheckExtension(KvmCap.Ioeventfd) > 0;
        _vm.IrqfdAndIoeventfd = irqfd && ioeventfd;
        if (_devices.Created.Count > 0 && !(irqfd && ioeventfd))
            Log.Info($"KVM lacks {(irqfd ? "" : "irqfd ")}{(ioeventfd ? "" : "ioeventfd")}; virtio devices use slower paths");
        foreach (var device in _devices.Created)
        {
            _devices.Slots.Add(device, _kvmVm, _vm.Mmio, memory, irqfd, ioeventfd, _vm.VmFailed);
            _vm.AddVirtioSlot(_devices.Slots.Transports[^1]);
        }
        _vm.StartIoThreads();
    }

    /// <summary>Opens the serial port's chardev with the other host sides, before anything else is set up.</summary>
    private void OpenSerialChardev()
    {
        if (_config.Serial is not { } config) return;
        try { _serialChardev = OpenChardev(config); }
        catch (ChardevException e) { throw new MachineConfigException($"serial port: {e.Message}"); }
    }

    private PcLegacyDevices AddLegacyDevices()
    {
        var legacy = PcPlatform.AddLegacyDevices(_vm, _kvmVm, _serialChardev);
        _vm.Pio.Register(AcpiPowerPorts.Base, AcpiPowerPorts.Length, new AcpiPowerPorts(_vm.RequestExit));
        _vm.Mmio.Register(Layout.BootTimer, Layout.BootTimerSize, new BootTimer(() => Log.Info(ProcessClock.BootTimeLine())));
        return legacy;
    }

    /// <summary>Writes the MP table and, unless disabled, the ACPI tables; returns the RSDP address.</summary>
    private ulong? WriteFirmwareTables(GuestMemory memory)
    {
        int cpus = _config.Cpus.Count;
        memory.Write(MpTable.DefaultAddress, MpTable.Build(MpTable.DefaultAddress, cpus));
        if (!_config.Acpi) return null;
        var acpi = AcpiTables.Build(AcpiTables.DefaultAddress,
            new AcpiConfig(cpus, VirtioMmioSlots.Windows(_devices.Created.Count)));
        if ((ulong)acpi.Length > MpTable.DefaultAddress - AcpiTables.DefaultAddress)
            throw new BootException("ACPI tables overflow their area below the MP table");
        memory.Write(AcpiTables.DefaultAddress, acpi);
        return AcpiTables.DefaultAddress;
    }

    /// <summary>The machine's virtio devices: those created, in slot order, the slots they were put in, and the
    /// chardevs they use. Devices in a slot go with the slot; any left out (a build that failed half way) are
    /// disposed on their own; the chardevs last (devices do not dispose theirs).</summary>
    private sealed class VirtioDeviceSet(VirtioMmioSlots slots) : IDisposable
    {
        private readonly List<VirtioDevice> _created = [];

        public IReadOnlyList<VirtioDevice> Created => _created;

        public List<Chardev> Chardevs { get; } = [];

        public VirtioMmioSlots Slots { get; } = slots;

        public void Add(VirtioDevice device) => _created.Add(device);

        public void Reorder(List<VirtioDevice> devices)
        {
            _created.Clear();
            _created.AddRange(devices);
        }

        public void Dispose()
        {
            Slots.Dispose(); // disposes the attached devices
            for (int i = Slots.Transports.Count; i < _created.Count; i++) _created[i].Dispose();
            foreach (var chardev in Chardevs) chardev.Dispose();
        }
    }
}
