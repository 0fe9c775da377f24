using StratoVirt.Kvm.Arm64;
using StratoVirt.Sys;

namespace StratoVirt.Kvm;

// The arm64 requests of a VM: the CPU model KVM prefers for its vCPUs, and in-kernel devices (the GIC).
public sealed unsafe partial class KvmVm
{
    /// <summary>KVM_ARM_PREFERRED_TARGET: the CPU model (and default features) to init vCPUs with on this host.</summary>
    public KvmVcpuInit PreferredTarget()
    {
        var init = new KvmVcpuInit();
        // init is a local of this frame that the ioctl fills.
        SysException.Check(Libc.Ioctl(_fd.Fd, ArmIoctls.PreferredTarget, &init), "KVM_ARM_PREFERRED_TARGET");
        return init;
    }

    /// <summary>KVM_CREATE_DEVICE: an in-kernel device of <paramref name="type"/>, owned by the returned handle.</summary>
    public KvmDevice CreateDevice(uint type, string name)
    {
        var create = new KvmCreateDevice { Type = type };
        // create is a local of this frame; the ioctl reads its type and writes the new fd.
        SysException.Check(Libc.Ioctl(_fd.Fd, ArmIoctls.CreateDevice, &create), $"KVM_CREATE_DEVICE ({name})");
        return new KvmDevice(new FileDescriptor((int)create.Fd), name);
    }
}

/// <summary>An in-kernel device made with KVM_CREATE_DEVICE (the arm64 GIC), configured through its attributes.</summary>
public sealed unsafe class KvmDevice(FileDescriptor fd, string name) : IDisposable
{
    /// <summary>KVM_SET_DEVICE_ATTR with a 64-bit value (an address, a count) the kernel reads.</summary>
    public void SetAttribute(uint group, ulong attribute, ulong value, string what)
    {
        var attr = new KvmDeviceAttr { Group = group, Attribute = attribute, Address = (ulong)&value };
        // attr and value are locals of this frame; the kernel reads the value through attr.Address during the call.
        SysException.Check(Libc.Ioctl(fd.Fd, ArmIoctls.SetDeviceAttr, &attr), $"{name}: {what}");
    }

    /// <summary>KVM_SET_DEVICE_ATTR of an attribute that takes no value (a control such as INIT).</summary>
    public void SetAttribute(uint group, ulong attribute, string what)
    {
        var attr = new KvmDeviceAttr { Group = group, Attribute = attribute };
        // attr is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(fd.Fd, ArmIoctls.SetDeviceAttr, &attr), $"{name}: {what}");
    }

    public void Dispose() => fd.Dispose();
}
