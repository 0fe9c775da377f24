using StratoVirt.Devices;
using StratoVirt.Kvm;

namespace StratoVirt.Machine;

/// <summary>A GSI of the in-kernel irqchip, pulsed to deliver one edge.</summary>
public sealed class KvmInterruptLine(KvmVm vm, uint gsi) : IInterruptLine
{
    public uint Gsi { get; } = gsi;

    public void Trigger()
    {
        vm.SetIrqLine(Gsi, true);
        vm.SetIrqLine(Gsi, false);
    }
}
