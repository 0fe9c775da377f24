using StratoVirt.Kvm;
using StratoVirt.Machine;

namespace StratoVirt.Tests.Machine;

/// <summary>
/// A machine that resets in place (q35): a guest reset (i8042, triple fault) or QMP system_reset parks every vCPU,
/// runs the machine's reset, raises RESET and lets the guest run again; one without a reset (the microVM,
/// -no-reboot) ends instead; system_powerdown presses the power button and the VM runs on.
/// </summary>
public sealed partial class MachineLifecycleTests
{
    private int _resets;
    private bool _vcpuInGuestDuringReset;

    /// <summary>A PC-like machine (an i8042 whose 0xFE resets, triple faults that reset) with, unless
    /// <paramref name="reboots"/> is false (as with -no-reboot), <paramref name="reset"/> or one that counts itself
    /// and notes whether a vCPU was in the guest meanwhile.</summary>
    private VirtualMachine Pc(bool reboots, Action? reset, params ScriptedVcpu[] vcpus)
    {
        var vm = Build(false, true, vcpus);
        if (reboots)
        {
            vm.SetReset(reset ?? (() =>
            {
                _vcpuInGuestDuringReset |= vcpus.Any(v => v.InRun);
                foreach (var v in vcpus) v.Idling = false;
                Interlocked.Increment(ref _resets);
            }));
        }
        return vm;
    }

    [Fact]
    public void AGuestResetResetsInPlaceAndTheGuestRunsOnUntilQuit()
    {
        // The guest resets, and its second boot resets again.
        var boot = new ScriptedVcpu(0, ScriptedExit.Out(0x64, 0xFE), ScriptedExit.Out(0x64, 0xFE));
        var other = new ScriptedVcpu(1);
        var vm = Pc(true, null, boot, other);
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => Volatile.Read(ref _resets) == 2));
        Assert.True(WaitFor(() => boot.Idling && other.Idling)); // both run the guest again
        Assert.False(_vcpuInGuestDuringReset);
        Assert.False(run.IsCompleted);
        Assert.Equal(2, boot.Runs); // one step per boot: the reset held it until the next boot
        ((IMachineControl)vm).Quit();
        Assert.Equal(ExitCause.QmpQuit, run.Result.Cause);
        Assert.Equal([new MachineEvent.Reset(true, ExitCause.GuestReset), new MachineEvent.Reset(true, ExitCause.GuestReset),
            new MachineEvent.Shutdown(false, ExitCause.QmpQuit)], Events);
    }

    [Fact]
    public void SystemResetResetsWithTheHostCause()
    {
        var vcpu = new ScriptedVcpu(0);
        var vm = Pc(true, null, vcpu);
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vcpu.Idling));
        ((IMachineControl)vm).SystemReset();
        Assert.True(WaitFor(() => Volatile.Read(ref _resets) == 1));
        Assert.True(WaitFor(() => vcpu.Idling));
        Assert.Equal([new MachineEvent.Reset(false, ExitCause.QmpSystemReset)], Events);
        Assert.False(run.IsCompleted);
        ((IMachineControl)vm).Quit();
        Assert.Equal(ExitCause.QmpQuit, run.Result.Cause);
    }

    [Fact]
    public void ATripleFaultResetsAPcMachine()
    {
        var vcpu = new ScriptedVcpu(1, ScriptedExit.Event(VcpuExitKind.Shutdown));
        var vm = Pc(true, null, new ScriptedVcpu(0), vcpu);
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => Volatile.Read(ref _resets) == 1));
        Assert.True(WaitFor(() => vcpu.Idling)); // the faulting vCPU's thread lives on
        Assert.Equal([new MachineEvent.Reset(true, ExitCause.GuestReset)], Events);
        ((IMachineControl)vm).Quit();
        Assert.Equal(ExitCause.QmpQuit, run.Result.Cause);
    }

    [Fact]
    public void WithoutAResetAGuestResetOrTripleFaultEndsTheVmWithExitZero()
    {
        foreach (var script in new[] { ScriptedExit.Out(0x64, 0xFE), ScriptedExit.Event(VcpuExitKind.Shutdown) })
        {
            _vm?.Dispose();
            lock (_events) _events.Clear();
            var vm = Pc(false, null, new ScriptedVcpu(0, script));
            var exit = RunAsync(vm).Result;
            Assert.Equal((ExitCause.GuestReset, 0), (exit.Cause, exit.Code));
            Assert.Equal([new MachineEvent.Reset(true, ExitCause.GuestReset), new MachineEvent.Shutdown(true, ExitCause.GuestReset)], Events);
        }
    }

    [Fact]
    public void AResetWhilePausedLeavesTheVmPausedUntilCont()
    {
        var vcpu = new ScriptedVcpu(0);
        var vm = Pc(true, null, vcpu);
        var control = (IMachineControl)vm;
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vcpu.Idling));
        control.Stop();
        vcpu.Idling = false;
        control.SystemReset();
        Assert.True(WaitFor(() => Volatile.Read(ref _resets) == 1));
        Thread.Sleep(50);
        Assert.False(control.Running);
        Assert.False(vcpu.Idling); // still parked
        control.Cont();
        Assert.True(WaitFor(() => vcpu.Idling));
        Assert.Equal([new MachineEvent.Stopped(), new MachineEvent.Reset(false, ExitCause.QmpSystemReset), new MachineEvent.Resumed()], Events);
        control.Quit();
        Assert.Equal(ExitCause.QmpQuit, run.Result.Cause);
    }

    [Fact]
    public void AResetThatFailsEndsTheVmWithAHostError()
    {
        var vm = Pc(true, () => throw new InvalidOperationException("KVM_SET_REGS: Invalid argument"),
            new ScriptedVcpu(0, ScriptedExit.Out(0x64, 0xFE)));
        var exit = RunAsync(vm).Result;
        Assert.Equal((ExitCause.HostError, 1), (exit.Cause, exit.Code));
        Assert.Contains("the reset failed: KVM_SET_REGS", exit.Reason);
        Assert.DoesNotContain(Events, e => e is MachineEvent.Reset);
    }

    [Fact]
    public void SystemPowerdownPressesThePowerButtonAfterTheCommandAndTheVmRunsOn()
    {
        var vcpu = new ScriptedVcpu(0);
        var vm = Pc(true, null, vcpu);
        int presses = 0;
        vm.SetPowerButton(() => Interlocked.Increment(ref presses));
        var run = RunAsync(vm);
        Assert.True(WaitFor(() => vcpu.Idling));
        ((IMachineControl)vm).SystemPowerdown();
        Assert.True(WaitFor(() => Volatile.Read(ref presses) == 1));
        Assert.True(WaitFor(() => Events.Count == 1));
        Assert.Equal([new MachineEvent.Powerdown()], Events);
        Assert.False(run.IsCompleted); // the guest decides: it powers off through S5 when it has handled the button
        ((IMachineControl)vm).Quit();
        Assert.Equal(ExitCause.QmpQuit, run.Result.Cause);
    }
}
