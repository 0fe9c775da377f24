using System.Runtime.InteropServices;

namespace StratoVirt.Kvm.Arm64;

/// <summary>The arm64-only KVM requests (arch/arm64/include/uapi/asm/kvm.h and linux/kvm.h); the generic ones
/// (VM, vCPU, memory slots, irqfd, KVM_IRQ_LINE) are in <see cref="KvmIoctls"/> with the same numbers.</summary>
public static class ArmIoctls
{
    public const ulong GetOneReg = 0x4010AEAB;        // _IOW(KVMIO, 0xab, struct kvm_one_reg)
    public const ulong SetOneReg = 0x4010AEAC;        // _IOW(KVMIO, 0xac, struct kvm_one_reg)
    public const ulong VcpuInit = 0x4020AEAE;         // _IOW(KVMIO, 0xae, struct kvm_vcpu_init)
    public const ulong PreferredTarget = 0x8020AEAF;  // _IOR(KVMIO, 0xaf, struct kvm_vcpu_init)
    public const ulong CreateDevice = 0xC00CAEE0;     // _IOWR(KVMIO, 0xe0, struct kvm_create_device)
    public const ulong SetDeviceAttr = 0x4018AEE1;    // _IOW(KVMIO, 0xe1, struct kvm_device_attr)
}

/// <summary>Ids of the registers KVM_SET_ONE_REG reaches: core registers are 64-bit words of struct kvm_regs,
/// named by their offset in 32-bit units.</summary>
public static class ArmCoreRegister
{
    private const ulong RegArm64 = 0x6000_0000_0000_0000, SizeU64 = 0x0030_0000_0000_0000, Core = 0x0010_0000;
    // struct user_pt_regs: regs[31], sp, pc, pstate (u64 each), at the start of struct kvm_regs.
    private const int SpIndex = 31, PcIndex = 32, PstateIndex = 33;

    /// <summary>General register Xn (0-30).</summary>
    public static ulong X(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, 30);
        return Id(n);
    }

    public static ulong Sp => Id(SpIndex);
    public static ulong Pc => Id(PcIndex);
    public static ulong Pstate => Id(PstateIndex);

    /// <summary>PSTATE a kernel is entered with (booting.rst): EL1 with its own stack (EL1h), D, A, I and F masked.</summary>
    public const ulong KernelEntryPstate = ModeEl1h | MaskDebug | MaskSError | MaskIrq | MaskFiq;
    private const ulong ModeEl1h = 0x5, MaskFiq = 0x40, MaskIrq = 0x80, MaskSError = 0x100, MaskDebug = 0x200;

    private static ulong Id(int word) => RegArm64 | SizeU64 | Core | (uint)word * 2UL;
}

/// <summary>Feature bits of KVM_ARM_VCPU_INIT.</summary>
[Flags]
public enum ArmVcpuFeatures : uint
{
    None = 0,
    /// <summary>The vCPU starts powered off; a PSCI CPU_ON from another vCPU starts it.</summary>
    PowerOff = 1 << 0,
    /// <summary>PSCI 0.2 (CPU_ON with a context id, SYSTEM_OFF and SYSTEM_RESET as KVM_EXIT_SYSTEM_EVENT).</summary>
    Psci02 = 1 << 2,
}

/// <summary>struct kvm_vcpu_init: the CPU model and seven words of feature bits.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmVcpuInit
{
    public uint Target;
    public fixed uint Features[7];
}

/// <summary>struct kvm_one_reg.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmOneReg
{
    public ulong Id;
    public ulong Address;
}

/// <summary>struct kvm_create_device.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmCreateDevice
{
    public uint Type;
    public uint Fd;
    public uint Flags;
}

/// <summary>struct kvm_device_attr.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmDeviceAttr
{
    public uint Flags;
    public uint Group;
    public ulong Attribute;
    public ulong Address;
}

/// <summary>The interrupt numbers KVM_IRQ_LINE takes on arm64 with an in-kernel GIC: the type in bits 24-31, the
/// vCPU in 16-23 (PPIs only), the GIC interrupt id in 0-15.</summary>
public static class ArmIrq
{
    private const uint TypeSpi = 1, TypePpi = 2;
    /// <summary>SPI n is GIC interrupt 32 + n.</summary>
    public const uint FirstSpiId = 32;

    public static uint Spi(uint spi)
    {
        if (spi > 1019 - FirstSpiId) throw new ArgumentOutOfRangeException(nameof(spi), spi, "SPIs are 0 to 987");
        return TypeSpi << 24 | (FirstSpiId + spi);
    }

    public static uint Ppi(int vcpu, uint ppi)
    {
        if (ppi > 15) throw new ArgumentOutOfRangeException(nameof(ppi), ppi, "PPIs are 0 to 15");
        if ((uint)vcpu > 255) throw new ArgumentOutOfRangeException(nameof(vcpu), vcpu, "KVM_IRQ_LINE names vCPUs 0 to 255");
        return TypePpi << 24 | (uint)vcpu << 16 | (16 + ppi);
    }
}

/// <summary>Device-attribute groups and values of the in-kernel GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3).</summary>
public static class VgicV3
{
    public const uint DeviceType = 7;
    public const uint GroupAddress = 0, GroupNrIrqs = 3, GroupControl = 4;
    public const ulong AddressDistributor = 2, AddressRedistributor = 3;
    public const ulong ControlInit = 0;
}
