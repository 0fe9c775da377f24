using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Machine;

namespace StratoVirt.Tests.Machine;

/// <summary>
/// The machine core's lifecycle with scripted vCPUs instead of KVM: how each ending reaches the exit code and the
/// ending events, pause and resume with the guest clock held, start paused, and a VM failure. No /dev/kvm, no
/// seccomp (the test process must stay unconfined).
/// </summary>
[Trait("Level", "Unit")]
public sealed partial class MachineLifecycleTests : IDisposable
{
    private readonly List<MachineEvent> _events = [];
    private readonly FakeClock _clock = new();
    private VirtualMachine? _vm;

    public void Dispose() => _vm?.Dispose();

    private sealed class FakeClock : IGuestClock
    {
        public ulong Now = 1_000;
        public readonly List<ulong> Sets = [];
        public ulong Get() => Now;
        public void Set(ulong nanoseconds) => Sets.Add(nanoseconds);
    }

    /// <summary>A machine with the given vCPUs and an i8042 (whose 0xFE command resets), built the way a builder
    /// would, but from scripted parts.</summary>
    private VirtualMachine Machine(bool startPaused = false, params ScriptedVcpu[] vcpus) => Build(startPaused, false, vcpus);

    /// <param name="pc">Triple faults reset, as on q35 (see MachineLifecycleTests.Reset.cs).</param>
    private VirtualMachine Build(bool startPaused, bool pc, ScriptedVcpu[] vcpus)
    {
        var config = new MachineConfig
        {
            KernelPath = "none", Seccomp = false, StartPaused = startPaused, Cpus = CpuTopology.Single(vcpus.Length),
        };
        var vm = new VirtualMachine(config);
        vm.SetClock(_clock);
        var i8042 = new I8042(() => vm.RequestReset(MachineExit.GuestReset("guest requested a reset (i8042)")));
        vm.Pio.Register(0x64, 1, i8042.CommandPort);
        vm.TripleFaultResets = pc;
        foreach (var v in vcpus) vm.AddVcpu(v, signalKicks: false);
        vm.Events += e => { lock (_events) _events.Add(e); };
        return _vm = vm;
    }

    private List<MachineEvent> Events
    {
        get { lock (_events) return [.. _events]; }
    }

    /// <summary>A machine running on a thread of its own, as the executable's main thread runs it.</summary>
    private sealed class Running
    {
        private readonly Thread _thread;
        private MachineExit? _exit;

        public Running(VirtualMachine vm)
        {
            _thread = new Thread(() => _exit = vm.Run()) { IsBackground = true };
            _thread.Start();
        }

        public bool IsCompleted => !_thread.IsAlive;

        /// <summary>The exit, once <see cref="VirtualMachine.Run"/> returned (10 s at most).</summary>
        public MachineExit Result => _thread.Join(TimeSpan.FromSeconds(10)) ? _exit! : throw new TimeoutException("the machine did not end");
    }

    private static Running RunAsync(VirtualMachine vm) => new(vm);

    private static bool WaitFor(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            if (DateTime.UtcNow > until) return false;
            Thread.Sleep(2);
        }
        return true;
    }

    [Fact]
    public void AGuestResetThroughTheI8042EndsTheVmWithResetThenShutdown()
    {
        var vm = Machine(false, new ScriptedVcpu(0, ScriptedExit.Out(0x64, 0xFE)));
        var exit = RunAsync(vm).Result;
        Assert.Equal((ExitCause.GuestReset, 0), (exit.Cause, exit.Code));
        Assert.Equal([new MachineEvent.Reset(true, ExitCause.GuestReset), new MachineEvent.Shutdown(true, ExitCause.GuestReset)], Events);
    }

    [Fact]
    public void ATripleFaultOnTheSecondVcpuEndsTheVmWithAnError()
    {
        var vm = Machine(false, new ScriptedVcpu(0), new ScriptedVcpu(1, ScriptedExit.Event(VcpuExitKind.Shutdown)));
        var exit = RunAsync(vm).Result;
        Assert.Equal((ExitCause.GuestPanic, 1), (exit.Cause, exit.Code));
        Assert.Contains("vCPU 1", exit.Reason);
        Assert.Equal([new MachineEvent.Shutdown(true, ExitCause.GuestPanic)], Events);
    }

    [Fact]
    public void QuitFromAManagementClientStopsEveryVcpu()
    {
        var vcpus = new[] { new ScriptedVcpu(0), new ScriptedVcpu(1) };
        var vm = Machine(false, vcpus);
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vm.Vcpus.All(v => v.ThreadId != 0)));
        ((IMachineControl)vm).Quit();
        var exit = run.Result;
        Assert.Equal(ExitCause.QmpQuit, exit.Cause);
        Assert.Equal([new MachineEvent.Shutdown(false, ExitCause.QmpQuit)], Events);
        Assert.All(((IMachineControl)vm).CpuThreads, c => Assert.NotEqual(0, c.ThreadId));
    }

    [Fact]
    public void AVcpuThreadThatDoesNotStopInTimeKeepsItsVcpuUntilItEnds()
    {
        using var stuck = new ManualResetEventSlim();
        var vcpu = new ScriptedVcpu(0) { Stuck = stuck };
        var vm = Machine(false, vcpu);
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vcpu.Idling));
        ((IMachineControl)vm).Quit();
        Assert.Equal(ExitCause.QmpQuit, run.Result.Cause); // Run gives up on the thread after its stop timeout
        vm.Dispose();
        Assert.False(vcpu.Disposed); // the thread is still in its run: its vCPU stays
        stuck.Set();
        Assert.True(WaitFor(() => !vm.Vcpus[0].ThreadAlive));
        vm.Dispose();
        Assert.True(vcpu.Disposed);
        Assert.False(vcpu.DisposedWhileRunning);
    }

    [Fact]
    public void TheConfinementWaitReportsASlowStartAndGoesOnWaiting()
    {
        using var countdown = new CountdownEvent(1);
        var reports = new List<TimeSpan>();
        var late = new Thread(() => { Thread.Sleep(350); countdown.Signal(); });
        late.Start();
        Assert.True(VirtualMachine.WaitPatiently(countdown, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), reports.Add));
        late.Join();
        Assert.InRange(reports.Count, 2, 4);
        Assert.Equal(TimeSpan.FromMilliseconds(100), reports[0]);
    }

    [Fact]
    public void TheConfinementWaitGivesUpAtItsLimit()
    {
        using var countdown = new CountdownEvent(1);
        var reports = new List<TimeSpan>();
        Assert.False(VirtualMachine.WaitPatiently(countdown, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), reports.Add));
        Assert.Equal([TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)], reports);
    }

    [Fact]
    public void StopHoldsTheVcpusAndTheClockAndContResumesThem()
    {
        var vcpu = new ScriptedVcpu(0);
        var vm = Machine(false, vcpu);
        var control = (IMachineControl)vm;
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vcpu.Idling)); // running: Run has let the vCPUs go
        control.Stop();
        Assert.False(control.Running);
        _clock.Now = 9_000; // time went on while paused
        vcpu.Enqueue(ScriptedExit.Out(0x64, 0xFE));
        Thread.Sleep(50);
        Assert.False(run.IsCompleted); // a parked vCPU does not run the guest's next step
        control.Cont();
        Assert.True(control.Running);
        Assert.Equal([1_000UL], _clock.Sets); // the clock resumes where it stood
        Assert.Equal(ExitCause.GuestReset, run.Result.Cause);
        Assert.Equal(new MachineEvent[] { new MachineEvent.Stopped(), new MachineEvent.Resumed() }, Events.Take(2));
    }

    [Fact]
    public void StartPausedRunsNothingUntilCont()
    {
        var vcpu = new ScriptedVcpu(0, ScriptedExit.Out(0x64, 0xFE));
        var vm = Machine(true, vcpu);
        var control = (IMachineControl)vm;
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => !control.Running)); // Run has come as far as holding the vCPUs
        Thread.Sleep(50);
        Assert.False(run.IsCompleted);
        control.Cont();
        Assert.Equal(ExitCause.GuestReset, run.Result.Cause);
    }

    [Fact]
    public void AFailureOfTheVmItselfEndsItWithAHostError()
    {
        var vm = Machine(false, new ScriptedVcpu(0));
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vm.Vcpus[0].ThreadId != 0));
        vm.VmFailed("KVM_IRQ_LINE 4: Invalid argument (errno 22)");
        var exit = run.Result;
        Assert.Equal((ExitCause.HostError, 1), (exit.Cause, exit.Code));
        Assert.Equal("KVM_IRQ_LINE 4: Invalid argument (errno 22)", exit.Reason);
    }

    [Fact]
    public void TheFirstEndingWins()
    {
        var vm = Machine(false, new ScriptedVcpu(0, ScriptedExit.Event(VcpuExitKind.Hlt)));
        vm.RequestExit(MachineExit.QmpSystemPowerdown);
        var exit = RunAsync(vm).Result;
        Assert.Equal(ExitCause.QmpSystemPowerdown, exit.Cause);
        Assert.Equal([new MachineEvent.Powerdown(), new MachineEvent.Shutdown(false, ExitCause.QmpSystemPowerdown)], Events);
    }
}
