using System.Runtime.InteropServices;
using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Machine.Qmp;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Sys.Seccomp;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Balloon;

namespace StratoVirt.Machine;

/// <summary>
/// The x86_64 microVM: guest RAM, the in-kernel irqchip and PIT, the legacy devices, a directly booted kernel,
/// one thread per vCPU, and the main event loop that serves the console until the guest stops.
/// </summary>
public sealed partial class MicroVm : IDisposable, IQmpCommands
{
    private const uint SerialIrq = 4;
    private const ulong SerialPort = 0x3F8;

    private readonly MachineConfig _config;
    private readonly List<IDisposable> _owned = [];
    private readonly EventFd _exitEvent = new();
    private MachineExit? _exit;

    private KvmSystem _kvm = null!;
    private KvmVm _vm = null!;
    private GuestMemory _memory = null!;
    private readonly List<Vcpu> _vcpus = [];
    private Serial16550? _serial;
    private int _serialFd = -1;
    private readonly EventLoop _mainLoop = new("main");
    private readonly Dictionary<string, EventLoop> _ioThreads = new(StringComparer.Ordinal);
    private readonly List<VirtioDevice> _virtioDevices = [];
    private readonly VirtioMmioSlots _virtioSlots = new();
    private QmpServer? _qmp;
    private VirtioBalloon? _balloon;

    public IoBus Pio { get; } = new("port I/O");
    public IoBus Mmio { get; } = new("MMIO");
    public GuestMemory Memory => _memory;
    public IReadOnlyList<Vcpu> Vcpus => _vcpus;

    private MicroVm(MachineConfig config)
    {
        _config = config;
        _threadsConfined = new CountdownEvent(config.Cpus.Count + config.IoThreads.Count);
    }

    /// <summary>Builds the whole machine; nothing runs until <see cref="Run"/>.</summary>
    public static MicroVm Create(MachineConfig config)
    {
        var kernel = KernelImage.Open(config.KernelPath);
        var machine = new MicroVm(config);
        try
        {
            machine.Build(kernel);
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    private void Build(KernelImage kernel)
    {
        // Guest RAM, kernel and initrd first: their errors need no KVM and leave nothing to undo.
        _memory = new GuestMemory(Layout.RamRegions(_config.MemorySize), _config.DumpGuestCore);
        _owned.Add(_memory);
        CreateVirtioDevices();
        var spec = new BootSpec(kernel, _config.InitrdPath, KernelCommandLine(), WriteFirmwareTables());
        var entry = BootLoader.Load(_memory, spec);

        _kvm = KvmSystem.Open();
        RequireCapabilities();
        _vm = _kvm.CreateVm();
        _owned.Add(_vm);
        if (!_vm.TrySetIdentityMapAddress(Layout.KvmIdentityMap))
            Log.Debug("KVM_SET_IDENTITY_MAP_ADDR refused; this host does not need it");
        try { _vm.SetTssAddress(Layout.KvmTss); }
        catch (SysException e) { Log.Debug($"{e.Message}; continuing without a real-mode TSS"); }
        _vm.CreateIrqchip();
        _vm.CreatePit2();
        uint slot = 0;
        foreach (var region in _memory.Regions)
            _vm.SetUserMemoryRegion(slot++, region.GuestAddress, region.Size, region.HostAddress);

        AddLegacyDevices();
        AttachVirtioDevices();
        CreateVcpus(entry);
        if (_config.Monitors.Count > 0) _qmp = new QmpServer(_config.Monitors, _mainLoop, this);
    }

    void IQmpCommands.Quit() => RequestExit(MachineExit.QmpQuit);

    void IQmpCommands.SystemReset() => RequestExit(MachineExit.QmpSystemReset);

    void IQmpCommands.SystemPowerdown() => RequestExit(MachineExit.QmpSystemPowerdown);

    private volatile bool _paused;
    private ulong? _pausedClock;

    bool IQmpCommands.Running => !_paused;

    void IQmpCommands.Stop()
    {
        if (_paused) return;
        foreach (var vcpu in _vcpus)
            if (!vcpu.Pause(TimeSpan.FromSeconds(2))) Log.Warn($"vCPU {vcpu.Id} did not pause within 2 s");
        _pausedClock = TryGetClock();
        _paused = true;
        _qmp?.SendEvent("STOP");
    }

    void IQmpCommands.Cont()
    {
        if (!_paused) return;
        // The guest clock stands still while paused, as it would on hardware that was stopped.
        if (_pausedClock is { } clock)
        {
            try { _vm.SetClock(clock); }
            catch (SysException e) { Log.Warn($"{e.Message}; the guest clock jumps over the pause"); }
        }
        _paused = false;
        foreach (var vcpu in _vcpus) vcpu.Resume();
        _qmp?.SendEvent("RESUME");
    }

    private ulong? TryGetClock()
    {
        try { return _vm.GetClock(); }
        catch (SysException e)
        {
            Log.Debug($"{e.Message}; the guest clock will jump over the pause");
            return null;
        }
    }

    ulong? IQmpCommands.BalloonActual => _balloon?.ActualBytes;

    IReadOnlyList<(int Index, int ThreadId)> IQmpCommands.CpuThreads => [.. _vcpus.Select(v => (v.Id, v.ThreadId))];

    bool IQmpCommands.TrySetBalloon(ulong targetBytes, out string? error)
    {
        if (_balloon is null)
        {
            error = "No balloon device has been activated";
            return false;
        }
        _balloon.SetTarget(targetBytes);
        error = null;
        return true;
    }

    /// <summary>Opens every device's host side (image files, taps, sockets) before anything else is set up, so that
    /// a bad path fails fast; each device gets the event loop (main or iothread) that will run it.</summary>
    private void CreateVirtioDevices()
    {
        if (_config.Monitors.Count > 0) ReplaceableSlots.CheckCapacity(_config.Devices);
        else if (_config.Devices.Count > VirtioMmioSlots.Capacity)
            throw new MachineConfigException(
                $"{_config.Devices.Count} virtio devices requested; the microVM has {VirtioMmioSlots.Capacity} slots");
        foreach (string id in _config.IoThreads)
        {
            var loop = new EventLoop($"iothread {id}");
            _ioThreads.Add(id, loop);
        }
        foreach (var c in _config.Devices)
        {
            var loop = c.IoThread is null ? _mainLoop
                : _ioThreads.GetValueOrDefault(c.IoThread) ?? throw new MachineConfigException(
                    $"device '{c.Id}': iothread '{c.IoThread}' is not defined (add -object iothread,id={c.IoThread})");
            var device = VirtioDeviceFactory.Create(c, new VirtioDeviceResources(_config.MemorySize, OpenChardev, loop));
            _virtioDevices.Add(device);
            if (device is VirtioBalloon balloon)
            {
                _balloon = balloon;
                balloon.ActualChanged += actual => _qmp?.SendBalloonChanged(actual);
            }
        }
        // Without a monitor nobody can hotplug: no empty slots to probe at boot.
        if (_config.Monitors.Count > 0) ReserveHotplugSlots();
    }

    /// <summary>Opens a -chardev backend; the machine owns it (devices do not dispose theirs).</summary>
    private Chardev OpenChardev(ChardevConfig config)
    {
        Chardev chardev = config switch
        {
            ChardevConfig.Stdio when _config.Serial is SerialBackend.Stdio =>
                throw new MachineConfigException($"chardev '{config.Id}': stdio is already the serial port's (-serial stdio)"),
            ChardevConfig.Stdio => new StdioChardev(config.Id),
            ChardevConfig.File f => new FileChardev(f.Id, f.Path),
            ChardevConfig.UnixSocket u => new SocketChardev(u.Id, u.Path),
            ChardevConfig.Pty => new PtyChardev(config.Id),
            _ => throw new MachineConfigException($"chardev '{config.Id}': unsupported backend"),
        };
        _owned.Add(chardev);
        if (chardev is PtyChardev pty) Log.WriteRaw(2, $"char device redirected to {pty.PtyPath} (label {config.Id})\n");
        return chardev;
    }

    /// <summary>-append, plus virtio_mmio.device= for each device (kernels without ACPI find devices that way;
    /// kernels that read the DSDT ignore the parameter or log that the window is taken).</summary>
    private string KernelCommandLine()
    {
        if (_virtioDevices.Count == 0) return _config.CommandLine;
        string devices = VirtioMmioSlots.KernelParameters(_virtioDevices.Count);
        return _config.CommandLine.Length == 0 ? devices : $"{_config.CommandLine} {devices}";
    }

    private void AttachVirtioDevices()
    {
        bool irqfd = _kvm.CheckExtension(KvmCap.Irqfd) > 0, ioeventfd = _kvm.CheckExtension(KvmCap.Ioeventfd) > 0;
        _irqfdAndIoeventfd = irqfd && ioeventfd;
        if (_virtioDevices.Count > 0 && !(irqfd && ioeventfd))
            Log.Info($"KVM lacks {(irqfd ? "" : "irqfd ")}{(ioeventfd ? "" : "ioeventfd")}; virtio devices use slower paths");
        foreach (var device in _virtioDevices) _virtioSlots.Add(device, _vm, Mmio, _memory, irqfd, ioeventfd, VmFailed);
        foreach (var (id, loop) in _ioThreads) loop.StartThread(() => PrepareThread(ThreadKind.IoThread, $"iothread {id}"));
    }

    private void RequireCapabilities()
    {
        foreach (var cap in new[] { KvmCap.Irqchip, KvmCap.UserMemory, KvmCap.Pit2, KvmCap.ExtCpuid })
            if (_kvm.CheckExtension(cap) == 0)
                throw new KvmUnavailableException($"this host's KVM lacks the {cap} capability, which the microVM needs");
        int max = Math.Max(_kvm.CheckExtension(KvmCap.MaxVcpus), _kvm.CheckExtension(KvmCap.NrVcpus));
        if (max > 0 && _config.Cpus.Count > max)
            throw new KvmUnavailableException($"-smp {_config.Cpus.Count} exceeds this host's KVM limit of {max} vCPUs");
    }

    private void AddLegacyDevices()
    {
        if (_config.Serial is { } backend)
        {
            _serialFd = backend switch
            {
                SerialBackend.File f => OpenSerialFile(f.Path),
                _ => 1,
            };
            _serial = new Serial16550(new KvmInterruptLine(_vm, SerialIrq, VmFailed), new FdSerialOutput(_serialFd));
            Pio.Register(SerialPort, 8, _serial);
        }
        var i8042 = new I8042(() => RequestExit(MachineExit.GuestReset("guest requested a reset (i8042)")));
        Pio.Register(0x60, 1, i8042.DataPort); // one port each: 0x61 belongs to the in-kernel PIT
        Pio.Register(0x64, 1, i8042.CommandPort);
        Pio.Register(0x70, 2, new CmosRtc(() => DateTime.UtcNow));
        Pio.Register(AcpiPowerPorts.Base, AcpiPowerPorts.Length, new AcpiPowerPorts(RequestExit));
        Mmio.Register(Layout.BootTimer, Layout.BootTimerSize, new BootTimer(() => Log.Info(ProcessClock.BootTimeLine())));
    }

    private int OpenSerialFile(string path)
    {
        var fd = FileDescriptor.Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_TRUNC, 0x1A4 /* 0644 */);
        _owned.Add(fd);
        return fd.Fd;
    }

    /// <summary>Writes the MP table and, unless disabled, the ACPI tables; returns the RSDP address.</summary>
    private ulong? WriteFirmwareTables()
    {
        int cpus = _config.Cpus.Count;
        _memory.Write(MpTable.DefaultAddress, MpTable.Build(MpTable.DefaultAddress, cpus));
        if (!_config.Acpi) return null;
        var acpi = AcpiTables.Build(AcpiTables.DefaultAddress,
            new AcpiConfig(cpus, VirtioMmioSlots.Windows(_virtioDevices.Count)));
        if ((ulong)acpi.Length > MpTable.DefaultAddress - AcpiTables.DefaultAddress)
            throw new BootException("ACPI tables overflow their area below the MP table");
        _memory.Write(AcpiTables.DefaultAddress, acpi);
        return AcpiTables.DefaultAddress;
    }

    private void CreateVcpus(BootEntry entry)
    {
        var supported = _kvm.GetSupportedCpuid();
        for (int id = 0; id < _config.Cpus.Count; id++)
        {
            var kvmVcpu = _vm.CreateVcpu(id);
            var vcpu = new Vcpu(kvmVcpu, Pio, Mmio, RequestExit, () => PrepareThread(ThreadKind.Vcpu, $"CPU {kvmVcpu.Id}/KVM"));
            _vcpus.Add(vcpu);
            VcpuSetup.ConfigureCommon(kvmVcpu, CpuidBuilder.ForVcpu(supported, id, _config.Cpus));
            if (id == 0) VcpuSetup.ConfigureBoot(kvmVcpu, entry);
        }
    }

    /// <summary>A failure of the VM itself (KVM refused an interrupt): the VM ends with a host error.</summary>
    private void VmFailed(string reason) => RequestExit(MachineExit.HostError(reason));

    /// <summary>Ends the VM; the first reason given wins. Safe from any thread.</summary>
    public void RequestExit(MachineExit exit)
    {
        if (Interlocked.CompareExchange(ref _exit, exit, null) is null) _exitEvent.Signal();
    }

    /// <summary>Runs the guest until it powers off, resets, or fails; returns why it stopped.</summary>
    public MachineExit Run()
    {
        using var terminal = _serial is not null && _config.Serial is SerialBackend.Stdio ? RawTerminal.TryEnter(0) : null;
        if (_config.Seccomp) Seccomp.ReportBlockedCalls(Log.Fd);
        VcpuKick.Install();
        // SIGTERM, SIGINT and SIGHUP end the VM through the same path as a guest power-off, so the terminal is restored.
        using var signals = new TerminationSignals();
        ulong signalToken = _mainLoop.Add(signals.Fd, Libc.EPOLLIN, _ =>
        {
            while (signals.TryTake(out int signal)) RequestExit(MachineExit.Signal(TerminationSignals.Name(signal)));
        });
        // The vCPU threads start parked; they run the guest once every thread is confined.
        foreach (var vcpu in _vcpus) vcpu.RequestPause();
        foreach (var vcpu in _vcpus) vcpu.Start();
        try
        {
            ConfineProcess();
            if (_config.StartPaused)
            {
                _pausedClock = TryGetClock();
                _paused = true;
            }
            else
            {
                foreach (var vcpu in _vcpus) vcpu.Resume();
            }
            RunEventLoop();
        }
        finally
        {
            _mainLoop.Remove(signalToken);
            foreach (var vcpu in _vcpus) vcpu.Stop(TimeSpan.FromSeconds(2));
        }
        var exit = _exit!;
        ReportExit(exit);
        return exit;
    }

    /// <summary>How long the last reply and events may take to reach a QMP client that does not read them.</summary>
    private static readonly TimeSpan QmpFlushBound = TimeSpan.FromMilliseconds(500);

    /// <summary>Tells the QMP client how the VM ended (RESET or POWERDOWN first where they apply, then SHUTDOWN),
    /// and waits briefly until the client has it: the process exits right after.</summary>
    private void ReportExit(MachineExit exit)
    {
        if (_qmp is not { } qmp) return;
        var data = new ShutdownEventData(exit.ByGuest, exit.QmpReason);
        switch (exit.PrecedingEvent)
        {
            case "RESET":
                qmp.SendEvent("RESET", data, QmpJsonContext.Default.ShutdownEventData);
                break;
            case { } name:
                qmp.SendEvent(name);
                break;
        }
        qmp.SendEvent("SHUTDOWN", data, QmpJsonContext.Default.ShutdownEventData);
        qmp.FlushOutput(QmpFlushBound);
    }

    /// <summary>The main thread's loop: exit requests, console input, and the queues of devices without an iothread.</summary>
    private void RunEventLoop()
    {
        ulong exitToken = _mainLoop.Add(_exitEvent.Fd, Libc.EPOLLIN, _ => { }); // wakes the loop; _exit says why
        StdinConsole? console = null;
        ulong stdinToken = 0;
        if (_serial is not null && _config.Serial is SerialBackend.Stdio)
        {
            console = new StdinConsole(_serial);
            try
            {
                stdinToken = _mainLoop.Add(0, Libc.EPOLLIN, _ =>
                {
                    if (!console.OnReadable())
                    {
                        _mainLoop.Remove(stdinToken); // end of input: the guest keeps running
                        console = null;
                    }
                });
            }
            catch (SysException) { console = null; } // stdin is a regular file or /dev/null: no console input
        }

        while (Volatile.Read(ref _exit) is null)
        {
            // While the UART's FIFO is full, poll briefly instead of reading more input.
            _mainLoop.RunOnce(console is { HasBacklog: true } ? 5 : -1);
            console?.Flush();
        }
        _mainLoop.Remove(exitToken);
    }

    public void Dispose()
    {
        foreach (var vcpu in _vcpus) vcpu.Dispose();
        _qmp?.Dispose();
        foreach (var loop in _ioThreads.Values) loop.Dispose(); // stops the threads before their devices go
        _virtioSlots.Dispose(); // disposes the attached devices
        foreach (var device in _virtioDevices.Skip(_virtioSlots.Transports.Count)) device.Dispose();
        _hotplug?.Dispose(); // backends stored by blockdev-add/netdev_add and not plugged in
        _mainLoop.Dispose();
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _kvm?.Dispose();
        _exitEvent.Dispose();
        _threadsConfined.Dispose();
    }
}
