using StratoVirt.Devices;
using StratoVirt.Kvm;
using StratoVirt.Sys;
using StratoVirt.Virtio.Transport.Pci;

namespace StratoVirt.Machine;

/// <summary>MSI messages delivered with KVM_SIGNAL_MSI. KVM refusing one is a failure of the VM, not of the
/// device: <paramref name="onFailure"/> ends the VM.</summary>
public sealed class KvmMsiController(KvmVm vm, Action<string> onFailure) : IMsiController
{
    public void Send(MsiMessage message)
    {
        try { vm.SignalMsi(message.Address, message.Data); }
        catch (SysException e) { onFailure(e.Message); }
    }
}

/// <summary>Queue notification addresses bound to eventfds with KVM ioeventfd (any value written).</summary>
public sealed class KvmDoorbells(KvmVm vm) : IDoorbellBinder
{
    public void Bind(ulong address, uint length, EventFd fd) => vm.AssignIoeventfd(address, length, null, fd.Fd);

    public void Unbind(ulong address, uint length, EventFd fd) => vm.DeassignIoeventfd(address, length, null, fd.Fd);
}
