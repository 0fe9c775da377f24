using StratoVirt.Devices;
using StratoVirt.Kvm;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>A GSI of the in-kernel irqchip driven with KVM_IRQ_LINE. KVM refusing the line is a failure of the VM,
/// not of the device that raised it: <paramref name="onFailure"/> ends the VM.</summary>
public sealed class KvmInterruptLine(KvmVm vm, uint gsi, Action<string> onFailure) : IInterruptLine
{
    public uint Gsi { get; } = gsi;

    public void Pulse()
    {
        SetLevel(true);
        SetLevel(false);
    }

    public void SetLevel(bool asserted)
    {
        try
        {
            vm.SetIrqLine(Gsi, asserted);
        }
        catch (SysException e)
        {
            onFailure(e.Message);
        }
    }
}
