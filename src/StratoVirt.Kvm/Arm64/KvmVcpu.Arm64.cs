using StratoVirt.Kvm.Arm64;
using StratoVirt.Sys;

namespace StratoVirt.Kvm;

// The arm64 requests of a vCPU: init with a CPU model and features, and single registers.
public sealed unsafe partial class KvmVcpu
{
    /// <summary>KVM_ARM_VCPU_INIT with <paramref name="target"/>'s CPU model and <paramref name="features"/>
    /// (the preferred target's own feature words are replaced).</summary>
    public void ArmInit(KvmVcpuInit target, ArmVcpuFeatures features)
    {
        var init = target;
        for (int i = 0; i < 7; i++) init.Features[i] = 0;
        init.Features[0] = (uint)features;
        // init is a local of this frame that the ioctl only reads.
        SysException.Check(Libc.Ioctl(_fd.Fd, ArmIoctls.VcpuInit, &init), $"KVM_ARM_VCPU_INIT of vCPU {Id}");
    }

    /// <summary>KVM_SET_ONE_REG of a 64-bit register (<see cref="ArmCoreRegister"/>).</summary>
    public void SetOneReg(ulong id, ulong value)
    {
        var reg = new KvmOneReg { Id = id, Address = (ulong)&value };
        // reg and value are locals of this frame; the kernel reads 8 bytes at reg.Address during the call.
        SysException.Check(Libc.Ioctl(_fd.Fd, ArmIoctls.SetOneReg, &reg), $"KVM_SET_ONE_REG 0x{id:x} of vCPU {Id}");
    }

    /// <summary>KVM_GET_ONE_REG of a 64-bit register.</summary>
    public ulong GetOneReg(ulong id)
    {
        ulong value = 0;
        var reg = new KvmOneReg { Id = id, Address = (ulong)&value };
        // reg and value are locals of this frame; the kernel writes 8 bytes at reg.Address during the call.
        SysException.Check(Libc.Ioctl(_fd.Fd, ArmIoctls.GetOneReg, &reg), $"KVM_GET_ONE_REG 0x{id:x} of vCPU {Id}");
        return value;
    }
}
