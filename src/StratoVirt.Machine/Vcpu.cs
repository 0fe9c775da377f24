using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>One vCPU thread: runs KVM_RUN in a loop and dispatches port and MMIO exits to the buses.</summary>
public sealed class Vcpu : IDisposable
{
    private const int StackSize = 256 * 1024;
    private readonly KvmVcpu _kvm;
    private readonly IoBus _pio;
    private readonly IoBus _mmio;
    private readonly Action<MachineExit> _onExit;
    private readonly Action _prepareThread;
    private Thread? _thread;
    private volatile bool _stop;
    private volatile int _tid;
    private readonly object _pauseGate = new();
    private volatile bool _pauseRequested;
    private bool _paused;

    /// <param name="prepareThread">Runs first on the new thread (names it and confines it).</param>
    public Vcpu(KvmVcpu kvm, IoBus pio, IoBus mmio, Action<MachineExit> onExit, Action prepareThread)
    {
        _prepareThread = prepareThread;
        _kvm = kvm;
        _pio = pio;
        _mmio = mmio;
        _onExit = onExit;
    }

    public int Id => _kvm.Id;
    public KvmVcpu Kvm => _kvm;
    /// <summary>The Linux thread id of the vCPU thread, once it has started.</summary>
    public int ThreadId => _tid;

    public void Start()
    {
        _thread = new Thread(RunLoop, StackSize) { Name = $"CPU {Id}/KVM", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Makes the thread stop before its next KVM_RUN (set before <see cref="Start"/> for -S).</summary>
    public void RequestPause()
    {
        lock (_pauseGate) _pauseRequested = true;
        Kick();
    }

    /// <summary>Pauses the vCPU and waits until its thread is parked outside KVM_RUN; false on timeout (or if the
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

    /// <summary>Gets the thread out of KVM_RUN: immediate_exit catches a kick that lands outside KVM_RUN, the
    /// signal one inside it.</summary>
    private void Kick()
    {
        _kvm.RunState.ImmediateExit = 1;
        int tid = _tid;
        if (tid != 0) Libc.TgKill(Libc.GetPid(), tid, VcpuKick.Signal);
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
            while (!_stop)
            {
                if (_pauseRequested) ParkWhilePaused();
                if (_stop) break;
                if (!_kvm.Run())
                {
                    // EINTR: a kick, or a signal for the runtime. A pause that was lifted before this thread
                    // parked leaves immediate_exit set: clear it, or KVM_RUN would return at once forever.
                    lock (_pauseGate)
                        if (!_pauseRequested && !_stop) _kvm.RunState.ImmediateExit = 0;
                    continue;
                }
                var exit = HandleExit();
                if (exit is not null)
                {
                    _onExit(exit);
                    return;
                }
            }
        }
        catch (Exception e)
        {
            _onExit(MachineExit.HostError($"vCPU {Id}: {e.Message}"));
        }
    }

    private void ParkWhilePaused()
    {
        lock (_pauseGate)
        {
            _paused = true;
            Monitor.PulseAll(_pauseGate);
            while (_pauseRequested && !_stop) Monitor.Wait(_pauseGate);
            _paused = false;
            if (!_stop) _kvm.RunState.ImmediateExit = 0; // a later pause sets it again under this lock's ordering
        }
    }

    /// <summary>Handles one exit; returns non-null when the VM must end.</summary>
    private MachineExit? HandleExit()
    {
        ref var run = ref _kvm.RunState;
        switch ((KvmExit)run.ExitReason)
        {
            case KvmExit.Io:
                HandleIo(ref run);
                return null;
            case KvmExit.Mmio:
                HandleMmio(ref run);
                return null;
            case KvmExit.Intr:
            case KvmExit.IrqWindowOpen:
                return null;
            case KvmExit.Hlt:
                return MachineExit.GuestPowerOff($"vCPU {Id} halted");
            case KvmExit.Shutdown:
                return MachineExit.GuestPanic($"vCPU {Id}: guest triple fault (KVM_EXIT_SHUTDOWN)");
            case KvmExit.SystemEvent:
                return run.SystemEventType switch
                {
                    1 => MachineExit.GuestPowerOff("guest shut down"),
                    2 => MachineExit.GuestReset("guest reset"),
                    _ => MachineExit.GuestPanic($"vCPU {Id}: guest crashed (system event {run.SystemEventType})"),
                };
            case KvmExit.InternalError:
                return MachineExit.HostError(run.InternalSuberror == 1
                    ? $"vCPU {Id}: KVM failed to emulate an instruction at rip=0x{SafeRip():x}"
                    : $"vCPU {Id}: KVM internal error {run.InternalSuberror} at rip=0x{SafeRip():x}");
            case KvmExit.FailEntry:
                return MachineExit.HostError($"vCPU {Id}: KVM could not enter the guest (hardware reason 0x{run.FailEntryReason:x})");
            default:
                return MachineExit.HostError($"vCPU {Id}: unexpected KVM exit reason {run.ExitReason} at rip=0x{SafeRip():x}");
        }
    }

    private void HandleIo(ref KvmRun run)
    {
        int size = run.IoSize;
        int count = (int)run.IoCount;
        var data = _kvm.RunBytes((int)run.IoDataOffset, size * count);
        bool isOut = run.IoDirection == 1;
        for (int i = 0; i < count; i++)
            Access(_pio, run.IoPort, data.Slice(i * size, size), isOut);
    }

    private void HandleMmio(ref KvmRun run)
    {
        int len = (int)Math.Min(run.MmioLen, 8u);
        Access(_mmio, run.MmioPhysAddr, _kvm.RunBytes(40, len), run.MmioIsWrite != 0);
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
            if (_accessFaults++ < MaxLoggedAccessFaults)
                Log.Warn($"vCPU {Id}: {(write ? "write to" : "read from")} {bus.Name} 0x{address:x} failed: " +
                         $"{e.GetType().Name}: {e.Message}{(_accessFaults == MaxLoggedAccessFaults ? " (further failures are not logged)" : "")}");
        }
    }

    private const int MaxLoggedAccessFaults = 10;
    private int _accessFaults;

    private ulong SafeRip()
    {
        try { return _kvm.GetRegs().Rip; }
        catch (SysException) { return 0; }
    }

    public void Dispose() => _kvm.Dispose();
}
