using StratoVirt.Devices.Legacy;
using StratoVirt.Devices.Pci;
using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Sys.Seccomp;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Machine;

/// <summary>
/// The machine core every machine type shares: the vCPU threads and their exit loop, pause and resume, how the VM
/// ends (exit codes and ending events), the main event loop and the iothreads, seccomp confinement, the controls a
/// management client uses, and the plumbing for hotplug and the balloon. A machine type's builder (the microVM's:
/// <see cref="MicroVmBuilder"/>) adds only what is its own — memory map, buses and their devices, boot, firmware
/// tables — and hands over what it made through the internal members here.
/// </summary>
public sealed partial class VirtualMachine : IMachineControl, IDisposable
{
    private readonly MachineConfig _config;
    private readonly List<IDisposable> _owned = [];
    private readonly EventFd _exitEvent = new();
    private readonly EventLoop _mainLoop = new("main");
    private readonly Dictionary<string, EventLoop> _ioThreads = new(StringComparer.Ordinal);
    private readonly List<Vcpu> _vcpus = [];
    private MachineExit? _exit;
    private IGuestClock? _clock;
    private VirtioBalloon? _balloon;

    /// <summary>A machine with its loops and nothing else; a builder adds the rest.</summary>
    internal VirtualMachine(MachineConfig config)
    {
        _config = config;
        // Before any thread confines itself: an iothread starts serving while the machine is still being built.
        if (config.Seccomp) Seccomp.ReportBlockedCalls(Log.Fd);
        _threadsConfined = new CountdownEvent(config.Cpus.Count + config.IoThreads.Count);
        foreach (string id in config.IoThreads) _ioThreads.Add(id, new EventLoop($"iothread {id}"));
    }

    public MachineConfig Config => _config;

    /// <summary>The port-I/O address space (the builder registers its devices).</summary>
    public IoBus Pio { get; } = new("port I/O");

    /// <summary>The MMIO address space outside guest RAM.</summary>
    public IoBus Mmio { get; } = new("MMIO");

    public GuestMemory Memory { get; internal set; } = null!;

    /// <summary>Whether every region of guest RAM is shared (mem-share=on, a memory backend with share=on), as a
    /// vhost-user backend needs it.</summary>
    internal bool MemoryShared
    {
        get
        {
            foreach (var region in Memory.Regions)
                if (!region.Shared) return false;
            return true;
        }
    }

    public IReadOnlyList<Vcpu> Vcpus => _vcpus;

    /// <summary>The loop on the main thread: QMP, chardevs, and the devices without an iothread.</summary>
    public EventLoop MainLoop => _mainLoop;

    /// <summary>The machine type's hotplug, or null when it has none (a microVM without a monitor).</summary>
    public IHotplug? Hotplug { get; internal set; }

    /// <summary>What happened to the machine, for its management clients (QMP). Raised on any thread.</summary>
    public event Action<MachineEvent>? Events;

    internal void Raise(MachineEvent e) => Events?.Invoke(e);

    /// <summary>The loop that runs a device: the iothread it names, or the main loop.</summary>
    internal EventLoop LoopFor(string? ioThread, string deviceId) =>
        ioThread is null ? _mainLoop
            : _ioThreads.GetValueOrDefault(ioThread) ?? throw new MachineConfigException(
                $"device '{deviceId}': iothread '{ioThread}' is not defined (add -object iothread,id={ioThread})");

    /// <summary>Disposes <paramref name="resource"/> with the machine, after the vCPUs and iothreads have stopped and
    /// before anything registered earlier (so memory outlives the devices that use it).</summary>
    internal T Own<T>(T resource) where T : IDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    /// <summary>The serial port's transmit writes queued in KVM's ring, whose tick the main loop runs; null
    /// without.</summary>
    internal SerialTransmitQueueing? SerialQueueing { get; set; }

    /// <summary>The serial port's output batches, which the main loop flushes; null without a serial port.</summary>
    private SerialOutputBuffer? _serialOutput;

    /// <summary>Serves <paramref name="port"/>'s input on the main loop, which also flushes its output. One port.</summary>
    internal void AttachSerialPort<TUart>(SerialPort<TUart> port) where TUart : IUartReceiver
    {
        port.Attach(_mainLoop);
        _serialOutput = port.Output;
    }

    /// <summary>The hypervisor's guest clock, which stands still while the VM is paused.</summary>
    internal void SetClock(IGuestClock clock) => _clock = clock;

    /// <summary>Adds a vCPU thread for <paramref name="vcpu"/>; it starts with <see cref="Run"/>.</summary>
    internal Vcpu AddVcpu(IVcpu vcpu, bool signalKicks = true)
    {
        var thread = new Vcpu(vcpu, Pio, Mmio, OnVcpuExit, () => PrepareThread(ThreadKind.Vcpu, $"CPU {vcpu.Id}/KVM"), signalKicks,
            TripleFaultResets);
        _vcpus.Add(thread);
        return thread;
    }

    /// <summary>The balloon the QMP balloon commands drive; its changes are raised as events.</summary>
    internal void SetBalloon(VirtioBalloon balloon)
    {
        _balloon = balloon;
        balloon.ActualChanged += actual => Raise(new MachineEvent.BalloonChanged(actual));
    }

    /// <summary>Raises the image failures of <paramref name="block"/> as events.</summary>
    internal void WatchBlock(VirtioBlock block) =>
        block.IoError += e => Raise(new MachineEvent.BlockIoError(e.Device, e.Write, e.Errno == Libc.ENOSPC,
            Libc.ErrorText(e.Errno)));

    /// <summary>Raises the loss of <paramref name="device"/>'s backend as an event.</summary>
    internal void WatchVhostUser(VhostUserDevice device) =>
        device.Disconnected += e => Raise(new MachineEvent.BackendDisconnected(e.Device, e.Chardev, e.Path));

    /// <summary>Starts the iothreads; each confines itself first. Call once the devices that use them are attached.</summary>
    internal void StartIoThreads()
    {
        foreach (var (id, loop) in _ioThreads)
        {
            loop.StartThread(() =>
            {
                PrepareThread(ThreadKind.IoThread, $"iothread {id}");
                Probe(ThreadKind.IoThread);
            });
        }
    }

    /// <summary>A failure of the VM itself (KVM refused an interrupt): the VM ends with a host error.</summary>
    internal void VmFailed(string reason) => RequestExit(MachineExit.HostError(reason));

    /// <summary>Ends the VM; the first reason given wins. Safe from any thread.</summary>
    public void RequestExit(MachineExit exit)
    {
        if (Interlocked.CompareExchange(ref _exit, exit, null) is null) _exitEvent.Signal();
    }

    void IMachineControl.Quit() => RequestExit(MachineExit.QmpQuit);

    void IMachineControl.SystemReset() => RequestReset(MachineExit.QmpSystemReset);

    /// <summary>Presses the machine's power button, or, on a machine without one (the microVM), ends the VM. The
    /// press and its POWERDOWN event come from the main loop, after the command's reply (as QEMU's).</summary>
    void IMachineControl.SystemPowerdown()
    {
        if (_powerButton is null)
        {
            RequestExit(MachineExit.QmpSystemPowerdown);
            return;
        }
        _powerButtonPending = true;
        _controlEvent.Signal();
    }

    // ---- reset and the power button (machines that have them: q35) ----

    private readonly EventFd _controlEvent = new();
    private Action? _reset;
    private Action? _powerButton;
    private MachineExit? _pendingReset;
    private volatile bool _powerButtonPending;

    /// <summary>Set by a builder before it creates the vCPUs: a KVM_EXIT_SHUTDOWN (triple fault) is a guest reset,
    /// as on a PC, instead of a failure.</summary>
    internal bool TripleFaultResets { get; set; }

    /// <summary>The machine type's power-on reset of everything but RAM: devices, interrupt controllers, the boot
    /// payload and the vCPUs' starting state. It runs on the main thread with every vCPU parked outside the guest.
    /// Without it (the microVM, or -no-reboot) a reset ends the VM.</summary>
    internal void SetReset(Action reset) => _reset = reset;

    /// <summary>The machine's power button (q35: the ACPI fixed power button), pressed by system_powerdown on the
    /// main thread; without it system_powerdown ends the VM.</summary>
    internal void SetPowerButton(Action press) => _powerButton = press;

    /// <summary>Resets the VM, or ends it with <paramref name="exit"/> where the machine does not reset. Requests
    /// that come while one is pending join it. Safe from any thread.</summary>
    public void RequestReset(MachineExit exit)
    {
        if (_reset is null)
        {
            RequestExit(exit);
            return;
        }
        if (Interlocked.CompareExchange(ref _pendingReset, exit, null) is not null) return;
        Log.Info($"{exit.Reason}: the VM resets");
        // Leave the guest at once (the main thread waits for every vCPU to park before it resets).
        foreach (var vcpu in _vcpus) vcpu.RequestPause();
        _controlEvent.Signal();
    }

    /// <summary>What a vCPU's exit asks for: a guest reset the machine performs keeps the thread (false), anything
    /// else ends the VM (true).</summary>
    private bool OnVcpuExit(MachineExit exit)
    {
        if (exit.Cause == ExitCause.GuestReset && _reset is not null)
        {
            RequestReset(exit);
            return false;
        }
        RequestExit(exit);
        return true;
    }

    /// <summary>On the main loop: the pending reset, then the pending power-button press.</summary>
    private void ServeControlRequests()
    {
        _controlEvent.Drain();
        if (Volatile.Read(ref _pendingReset) is { } reset) PerformReset(reset);
        if (_powerButtonPending && Volatile.Read(ref _exit) is null)
        {
            _powerButtonPending = false;
            _powerButton!();
            Raise(new MachineEvent.Powerdown());
        }
    }

    /// <summary>Parks every vCPU, runs the machine's reset, raises RESET, and lets the vCPUs boot again (unless the
    /// VM is paused: it stays paused, reset, as QEMU's). A vCPU that does not park, or a reset that fails, ends
    /// the VM with a host error: half a reset cannot run.</summary>
    private void PerformReset(MachineExit request)
    {
        foreach (var vcpu in _vcpus)
        {
            if (vcpu.Pause(TimeSpan.FromSeconds(5))) continue;
            VmFailed($"vCPU {vcpu.Id} did not stop for the reset within 5 s");
            return;
        }
        try { _reset!(); }
        catch (Exception e)
        {
            VmFailed($"the reset failed: {e.Message}");
            return;
        }
        Raise(new MachineEvent.Reset(request.ByGuest, request.Cause));
        Volatile.Write(ref _pendingReset, null);
        if (!_paused)
            foreach (var vcpu in _vcpus) vcpu.Resume();
    }

    private volatile bool _paused;
    private ulong? _pausedClock;

    bool IMachineControl.Running => !_paused;

    void IMachineControl.Stop()
    {
        if (_paused) return;
        foreach (var vcpu in _vcpus)
            if (!vcpu.Pause(TimeSpan.FromSeconds(2))) Log.Warn($"vCPU {vcpu.Id} did not pause within 2 s");
        _pausedClock = TryGetClock();
        _paused = true;
        Raise(new MachineEvent.Stopped());
    }

    void IMachineControl.Cont()
    {
        if (!_paused) return;
        // The guest clock stands still while paused, as it would on hardware that was stopped.
        if (_pausedClock is { } clock)
        {
            try { _clock!.Set(clock); }
            catch (SysException e) { Log.Warn($"{e.Message}; the guest clock jumps over the pause"); }
        }
        _paused = false;
        foreach (var vcpu in _vcpus) vcpu.Resume();
        Raise(new MachineEvent.Resumed());
    }

    private ulong? TryGetClock()
    {
        if (_clock is null) return null;
        try { return _clock.Get(); }
        catch (SysException e)
        {
            Log.Debug($"{e.Message}; the guest clock will jump over the pause");
            return null;
        }
    }

    ulong? IMachineControl.BalloonActual => _balloon?.ActualBytes;

    /// <summary>The PCI root bus (q35); null on the microVM.</summary>
    internal PciBus? PciRoot { get; set; }

    IReadOnlyList<PciFunctionInfo> IMachineControl.PciFunctions => PciRoot?.Describe() ?? [];

    IReadOnlyList<(int Index, int ThreadId)> IMachineControl.CpuThreads
    {
        get
        {
            var threads = new (int Index, int ThreadId)[_vcpus.Count];
            for (int i = 0; i < threads.Length; i++) threads[i] = (_vcpus[i].Id, _vcpus[i].ThreadId);
            return threads;
        }
    }

    bool IMachineControl.TrySetBalloon(ulong targetBytes, out string? error)
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

    /// <summary>Runs the guest until it powers off, resets, or fails; returns why it stopped, after raising the
    /// ending events.</summary>
    public MachineExit Run()
    {
        if (_vcpus.Count > 0) VcpuKick.Install();
        RunVcpus();
        var exit = _exit!;
        foreach (var e in exit.EndingEvents()) Raise(e);
        return exit;
    }

    private void RunVcpus()
    {
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
            using var startupPages = StartupPages.Prepare(); // before the filters: it opens /proc/self/pagemap
            ConfineProcess();
            Probe(ThreadKind.Main);
            if (_config.StartPaused)
            {
                _pausedClock = TryGetClock();
                _paused = true;
            }
            else
            {
                foreach (var vcpu in _vcpus) vcpu.Resume();
            }
            RunEventLoop(startupPages);
        }
        finally
        {
            _mainLoop.Remove(signalToken);
            foreach (var vcpu in _vcpus) vcpu.Stop(TimeSpan.FromSeconds(2));
            SerialQueueing?.Finish(); // what the guest wrote since its last exit
            _serialOutput?.Flush();
        }
    }

    /// <summary>The main thread's loop: exit requests, chardev input (the serial port's and the console's), QMP,
    /// and the queues of devices without an iothread. Once start-up has settled, it gives back what only start-up
    /// needed (<paramref name="startupPages"/>, see <see cref="EndStartup"/>).</summary>
    private void RunEventLoop(StartupPageRelease startupPages)
    {
        ulong exitToken = _mainLoop.Add(_exitEvent.Fd, Libc.EPOLLIN, _ => { }); // wakes the loop; _exit says why
        ulong controlToken = _mainLoop.Add(_controlEvent.Fd, Libc.EPOLLIN, _ => ServeControlRequests());
        var startup = new StartupSettle(Environment.TickCount64);
        while (Volatile.Read(ref _exit) is null)
        {
            // Only while the serial zone is in place, serial output waits, or start-up lasts, does the loop have a
            // tick; an idle VM runs none of its code.
            var queueing = SerialQueueing is { Queueing: true } q ? q : null;
            int timeout = StartupSettle.Sooner(queueing?.TimeoutMs ?? -1, _serialOutput?.TimeoutMs ?? -1);
            int handled = _mainLoop.RunOnce(StartupSettle.Sooner(timeout, startup.TimeoutMs(Environment.TickCount64)));
            queueing?.Tick(); // may hand drained bytes to the serial output
            _serialOutput?.FlushIfDue();
            if (startup.Observe(handled, Environment.TickCount64)) EndStartup(startupPages);
        }
        _mainLoop.Remove(controlToken);
        _mainLoop.Remove(exitToken);
    }

    /// <summary>Gives back the resident pages of read-only code and data that start-up touched
    /// (<see cref="StartupPages"/>), to be faulted in again from the page cache by whatever later needs them.</summary>
    private static void EndStartup(StartupPageRelease startupPages)
    {
        var ranges = startupPages.StillFilePages();
        ulong bytes = 0;
        foreach (var range in ranges) bytes += range.Length;
        // Logged first: formatting and writing the line would fault a good part of what goes back in again.
        if (bytes > 0) Log.Info($"start-up done: the pages of {bytes >> 10} KiB of read-only code and data mappings given back");
        StartupPages.Release(ranges);
    }

    public void Dispose()
    {
        // A vCPU thread that did not stop in time (a host too crowded to schedule it, a device call that blocks)
        // would still use its kvm_run page, guest memory, the devices and the exit eventfd: nothing is freed under
        // it, and the process's end frees everything.
        int running = 0;
        foreach (var vcpu in _vcpus)
            if (vcpu.ThreadAlive) running++;
        if (running > 0)
        {
            Log.Warn($"{running} vCPU thread(s) still running: their VM is left to the end of the process");
            return;
        }
        foreach (var vcpu in _vcpus) vcpu.Dispose();
        foreach (var loop in _ioThreads.Values) loop.Dispose(); // stops the threads before their devices go
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _mainLoop.Dispose();
        _exitEvent.Dispose();
        _controlEvent.Dispose();
        _threadsConfined.Dispose();
    }
}
