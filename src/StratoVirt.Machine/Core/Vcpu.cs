using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>One vCPU thread: runs the vCPU in a loop and dispatches its port and MMIO exits to the buses.</summary>
public sealed class Vcpu : IDisposable
{
    private const int StackSize = 256 * 1024;
    private readonly IVcpu _vcpu;
    private readonly IoBus _pio;
    private readonly IoBus _mmio;
    private readonly Func<MachineExit, bool> _onExit;
    private readonly Action _prepareThread;
    private readonly bool _signalKicks;
    private Thread? _thread;
    private volatile bool _stop;
    private volatile int _tid;
    private readonly object _pauseGate = new();
    private volatile bool _pauseRequested;
    private bool _paused;

    /// <param name="onExit">Told what a guest exit asks for; true: the VM ends and the thread with it, false: the
    /// machine handles it (a reset it performs) and the thread runs on, parking if the machine asked it to.</param>
    /// <param name="prepareThread">Runs first on the new thread (names it and confines it).</param>
    /// <param name="signalKicks">Whether a kick also signals the thread (<see cref="VcpuKick"/>), which a vCPU
    /// blocked in KVM_RUN needs; a test's scripted vCPU returns on immediate_exit alone.</param>
    public Vcpu(IVcpu vcpu, IoBus pio, IoBus mmio, Func<MachineExit, bool> onExit, Action prepareThread, bool signalKicks = true,
        bool tripleFaultResets = false)
    {
        _prepareThread = prepareThread;
        _vcpu = vcpu;
        _pio = pio;
        _mmio = mmio;
        _onExit = onExit;
        _signalKicks = signalKicks;
        _tripleFaultResets = tripleFaultResets;
        _writeQueued = WriteQueued;
    }

    private readonly bool _tripleFaultResets;
    private readonly CoalescedWriteHandler _writeQueued;

    /// <summary>KVM's ring of the guest's writes it queued instead of exiting (the serial port's transmit register),
    /// drained before each exit is served; set before the thread starts.</summary>
    internal CoalescedRing? QueuedWrites { get; set; }

    public int Id => _vcpu.Id;
    public IVcpu Handle => _vcpu;
    /// <summary>The Linux thread id of the vCPU thread, once it has started.</summary>
    public int ThreadId => _tid;

    /// <summary>Whether the thread was started and has not ended (one that <see cref="Stop"/> gave up on).</summary>
    public bool ThreadAlive => _thread is { IsAlive: true };

    public void Start()
    {
        _thread = new Thread(RunLoop, StackSize) { Name = $"CPU {Id}/KVM", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Makes the thread stop before its next run (set before <see cref="Start"/> for -S).</summary>
    public void RequestPause()
    {
        lock (_pauseGate) _pauseRequested = true;
        Kick();
    }

    /// <summary>Pauses the vCPU and waits until its thread is parked outside the guest; false on timeout (or if the
    /// thread is gone).</summary>
    public bool Pause(TimeSpan timeout)
    {
        RequestPause();
        lock (_pauseGate)
        {
            var until = DateTime.UtcNow + timeout;
            while (!_paused && _thread is { IsAlive: true })
            {
                var left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_pauseGate, left)) return _paused;
            }
            return _paused;
        }
    }

    public void Resume()
    {
        lock (_pauseGate)
        {
            _pauseRequested = false;
            Monitor.PulseAll(_pauseGate);
        }
    }

    /// <summary>Gets the thread out of the guest: immediate_exit catches a kick that lands outside KVM_RUN, the
    /// signal one inside it.</summary>
    private void Kick()
    {
        _vcpu.ImmediateExit = true;
        int tid = _tid;
        if (tid != 0 && _signalKicks) Libc.TgKill(Libc.GetPid(), tid, VcpuKick.Signal);
    }

    /// <summary>Stops the thread.</summary>
    public void Stop(TimeSpan timeout)
    {
        _stop = true;
        Kick();
        lock (_pauseGate) Monitor.PulseAll(_pauseGate);
        if (_thread is not null && !_thread.Join(timeout))
            Log.Warn($"vCPU {Id} did not stop within {timeout.TotalMilliseconds} ms");
    }

    private void RunLoop()
    {
        _tid = Libc.GetTid();
        try
        {
            _prepareThread();
            bool entered = false;
            while (!_stop)
            {
                if (_pauseRequested)
                {
                    if (CompletePendingAccess() is { } ending && _onExit(ending)) return;
                    ParkWhilePaused();
                }
                if (_stop) break;
                if (!entered)
                {
                    entered = true;
                    if (Id == 0 && Log.IsEnabled(LogLevel.Info)) Log.Info(ProcessClock.FirstEntryLine());
                    VirtualMachine.Probe(ThreadKind.Vcpu);
                }
                var exit = Dispatch(_vcpu.Run(), out _accessPending);
                if (exit is not null && _onExit(exit)) return;
            }
        }
        catch (Exception e)
        {
            _onExit(MachineExit.HostError($"vCPU {Id}: {e.Message}"));
        }
    }

    /// <summary>
    /// KVM finishes a port or MMIO read (the value into the guest's register) only when the vCPU next enters
    /// KVM_RUN, so a paused vCPU whose state may be saved enters it once more with immediate_exit set: KVM
    /// completes the access and returns at once without running the guest.
    /// </summary>
    private MachineExit? CompletePendingAccess()
    {
        // An access split in two (across a page) exits once more for its second half, which is served like any other.
        while (_accessPending)
        {
            _vcpu.ImmediateExit = true;
            if (Dispatch(_vcpu.Run(), out _accessPending) is { } ending) return ending;
        }
        return null;
    }

    private bool _accessPending;

    private void ParkWhilePaused()
    {
        lock (_pauseGate)
        {
            _paused = true;
            Monitor.PulseAll(_pauseGate);
            while (_pauseRequested && !_stop) Monitor.Wait(_pauseGate);
            _paused = false;
            if (!_stop) _vcpu.ImmediateExit = false; // a later pause sets it again under this lock's ordering
        }
    }

    /// <summary>Handles one exit; returns non-null when the VM must end. <paramref name="accessPending"/>: the
    /// exit was a port or MMIO access, which KVM completes on the next run.</summary>
    internal MachineExit? Dispatch(VcpuExit exit, out bool accessPending)
    {
        accessPending = exit.Kind is VcpuExitKind.Io or VcpuExitKind.Mmio;
        return Dispatch(exit);
    }

    /// <summary>Handles one exit; returns non-null when the VM must end.</summary>
    internal MachineExit? Dispatch(VcpuExit exit)
    {
        // Writes the guest made before this exit reach their devices first; vCPUs exit with an empty ring nearly
        // always, so the check comes before the ring's lock.
        if (QueuedWrites is { IsEmpty: false } ring) ring.Drain(_writeQueued);
        switch (exit.Kind)
        {
            case VcpuExitKind.Io:
                for (int i = 0; i < exit.Count; i++)
                    Access(_pio, exit.Address, exit.Data.Slice(i * exit.Size, exit.Size), exit.IsWrite);
                return null;
            case VcpuExitKind.Mmio:
                Access(_mmio, exit.Address, exit.Data, exit.IsWrite);
                return null;
            case VcpuExitKind.Interrupted:
                // A kick, or a signal for the runtime. A pause that was lifted before this thread parked leaves
                // immediate_exit set: clear it, or the vCPU would return at once forever.
                lock (_pauseGate)
                    if (!_pauseRequested && !_stop) _vcpu.ImmediateExit = false;
                return null;
            case VcpuExitKind.IrqWindowOpen:
                return null;
            case VcpuExitKind.Hlt:
                return MachineExit.GuestPowerOff($"vCPU {Id} halted");
            case VcpuExitKind.Shutdown:
                // A PC resets on a triple fault (the q35, as QEMU's); the microVM treats it as a failure.
                return _tripleFaultResets
                    ? MachineExit.GuestReset($"vCPU {Id}: guest triple fault (KVM_EXIT_SHUTDOWN) resets the machine")
                    : MachineExit.GuestPanic($"vCPU {Id}: guest triple fault (KVM_EXIT_SHUTDOWN)");
            case VcpuExitKind.SystemEvent:
                return exit.SystemEventType switch
                {
                    SystemEvent.Shutdown => MachineExit.GuestPowerOff("guest shut down"),
                    SystemEvent.Reset => MachineExit.GuestReset("guest reset"),
                    _ => MachineExit.GuestPanic($"vCPU {Id}: guest crashed (system event {exit.Detail})"),
                };
            case VcpuExitKind.InternalError:
                return MachineExit.HostError(exit.Detail == 1
                    ? $"vCPU {Id}: KVM failed to emulate an instruction at rip=0x{_vcpu.InstructionPointer:x}"
                    : $"vCPU {Id}: KVM internal error {exit.Detail} at rip=0x{_vcpu.InstructionPointer:x}");
            case VcpuExitKind.FailEntry:
                return MachineExit.HostError($"vCPU {Id}: KVM could not enter the guest (hardware reason 0x{exit.Detail:x})");
            default:
                return MachineExit.HostError($"vCPU {Id}: unexpected KVM exit reason {exit.Detail} at rip=0x{_vcpu.InstructionPointer:x}");
        }
    }

    /// <summary>One register access. A device that throws fails that access alone (a read returns all ones); the
    /// guest and the other devices run on. Devices report what must end the VM through the machine, not by
    /// throwing.</summary>
    private void Access(IoBus bus, ulong address, Span<byte> data, bool write)
    {
        try
        {
            if (write) bus.Write(address, data);
            else bus.Read(address, data);
        }
        catch (Exception e)
        {
            if (!write) data.Fill(0xff);
            AccessFailed(bus, address, write, e);
        }
    }

    /// <summary>A write KVM queued in the ring, served like an exit's.</summary>
    private void WriteQueued(ulong address, bool pio, ReadOnlySpan<byte> data)
    {
        var bus = pio ? _pio : _mmio;
        try { bus.Write(address, data); }
        catch (Exception e) { AccessFailed(bus, address, write: true, e); }
    }

    private void AccessFailed(IoBus bus, ulong address, bool write, Exception e)
    {
        if (_accessFaults++ < MaxLoggedAccessFaults)
            Log.Warn($"vCPU {Id}: {(write ? "write to" : "read from")} {bus.Name} 0x{address:x} failed: " +
                     $"{e.GetType().Name}: {e.Message}{(_accessFaults == MaxLoggedAccessFaults ? " (further failures are not logged)" : "")}");
    }

    private const int MaxLoggedAccessFaults = 10;
    private int _accessFaults;

    public void Dispose() => _vcpu.Dispose();
}
