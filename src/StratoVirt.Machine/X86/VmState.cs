using StratoVirt.Devices.State;
using StratoVirt.Kvm;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>The VM-wide state KVM keeps for the microVM: both PICs, the IOAPIC, the PIT and the guest clock.</summary>
public sealed class X86VmState
{
    public KvmIrqchip PicMaster, PicSlave, Ioapic;
    public KvmPitState2 Pit;
    public ulong ClockNanoseconds;

    public static X86VmState Capture(KvmVm vm) => new()
    {
        PicMaster = vm.GetIrqchip(KvmIrqchip.PicMaster),
        PicSlave = vm.GetIrqchip(KvmIrqchip.PicSlave),
        Ioapic = vm.GetIrqchip(KvmIrqchip.Ioapic),
        Pit = vm.GetPit2(),
        ClockNanoseconds = vm.GetClockData().Clock,
    };

    /// <summary>The clock goes first, so that the timers restored after it count from the saved time.</summary>
    public void Apply(KvmVm vm)
    {
        vm.Set(ClockNanoseconds);
        ApplyInterruptControllers(vm);
    }

    /// <summary>The PIT, both PICs and the IOAPIC without the clock: a reset puts back their power-on state while
    /// the guest clock runs on.</summary>
    public void ApplyInterruptControllers(KvmVm vm)
    {
        vm.SetPit2(Pit);
        vm.SetIrqchip(PicMaster);
        vm.SetIrqchip(PicSlave);
        vm.SetIrqchip(Ioapic);
    }

    public void Write(StateWriter writer)
    {
        writer.WriteStruct(PicMaster);
        writer.WriteStruct(PicSlave);
        writer.WriteStruct(Ioapic);
        writer.WriteStruct(Pit);
        writer.WriteUInt64(ClockNanoseconds);
    }

    public static X86VmState Read(StateReader reader)
    {
        var state = new X86VmState
        {
            PicMaster = reader.ReadStruct<KvmIrqchip>("the master PIC"),
            PicSlave = reader.ReadStruct<KvmIrqchip>("the slave PIC"),
            Ioapic = reader.ReadStruct<KvmIrqchip>("the IOAPIC"),
            Pit = reader.ReadStruct<KvmPitState2>("the PIT"),
            ClockNanoseconds = reader.ReadUInt64(),
        };
        if ((state.PicMaster.ChipId, state.PicSlave.ChipId, state.Ioapic.ChipId) != (KvmIrqchip.PicMaster, KvmIrqchip.PicSlave, KvmIrqchip.Ioapic))
            throw new StateException($"{reader.Name} state: the interrupt controllers are out of order");
        return state;
    }
}

/// <summary>The KVM VM as a saved-state record ("kvm-vm").</summary>
public sealed class KvmVmStateful(KvmVm vm) : IStateful
{
    public string StateName => "kvm-vm";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer) => X86VmState.Capture(vm).Write(writer);

    public void RestoreState(StateReader reader)
    {
        var state = X86VmState.Read(reader);
        reader.ExpectEnd();
        try { state.Apply(vm); }
        catch (SysException e) { throw new StateException($"the VM's interrupt controllers and clock: {e.Message}"); }
    }
}
