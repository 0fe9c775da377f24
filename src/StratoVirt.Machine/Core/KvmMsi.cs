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

/// <summary>
/// The VM's MSI routes for irqfds: each binding takes a GSI above the IOAPIC's pins, routed to its message in the
/// whole table that KVM_SET_GSI_ROUTING replaces (the irqchip's own routes included), and KVM_IRQFD ties the
/// eventfd to it. Shared by every function of the machine; vCPUs change it when the guest programs, masks or
/// unmasks vectors, so one lock covers the table.
/// </summary>
public sealed class KvmIrqfdRoutes(KvmVm vm) : IIrqfdRoutes
{
    private readonly GsiRoutes _routes = GsiRoutes.WithIrqchipDefaults();
    private readonly SortedSet<uint> _free = [];
    private readonly Lock _gate = new();
    private uint _next = GsiRoutes.IoapicPins;

    public uint Bind(EventFd fd, MsiMessage message)
    {
        lock (_gate)
        {
            uint gsi = _free.Count > 0 ? _free.Min : _next;
            _routes.SetMsi(gsi, message.Address, message.Data);
            try
            {
                vm.SetGsiRouting(_routes);
                vm.AssignIrqfd(fd.Fd, gsi);
            }
            catch (SysException)
            {
                _routes.Remove(gsi);
                vm.SetGsiRouting(_routes);
                throw;
            }
            if (!_free.Remove(gsi)) _next++;
            return gsi;
        }
    }

    public void Retarget(uint gsi, MsiMessage message)
    {
        lock (_gate)
        {
            _routes.SetMsi(gsi, message.Address, message.Data);
            vm.SetGsiRouting(_routes);
        }
    }

    public void Unbind(EventFd fd, uint gsi)
    {
        lock (_gate)
        {
            vm.DeassignIrqfd(fd.Fd, gsi);
            _routes.Remove(gsi);
            _free.Add(gsi);
            vm.SetGsiRouting(_routes);
        }
    }
}
