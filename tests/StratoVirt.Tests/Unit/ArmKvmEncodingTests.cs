using System.Runtime.CompilerServices;
using StratoVirt.Boot.Acpi;
using StratoVirt.Kvm.Arm64;
using StratoVirt.Machine;

namespace StratoVirt.Tests.Unit;

/// <summary>The arm64 KVM encodings against arch/arm64/include/uapi/asm/kvm.h and linux/kvm.h: one-reg ids, the
/// KVM_IRQ_LINE interrupt numbers, vCPU init features, ioctl numbers and struct sizes.</summary>
[Trait("Level", "Unit")]
public sealed class ArmKvmEncodingTests
{
    [Fact]
    public void CoreRegisterIdsAreKvmRegsOffsetsInWords()
    {
        // KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offsetof(struct kvm_regs, x) / 4
        Assert.Equal(0x6030_0000_0010_0000UL, ArmCoreRegister.X(0));
        Assert.Equal(0x6030_0000_0010_0002UL, ArmCoreRegister.X(1));
        Assert.Equal(0x6030_0000_0010_003CUL, ArmCoreRegister.X(30));
        Assert.Equal(0x6030_0000_0010_003EUL, ArmCoreRegister.Sp);
        Assert.Equal(0x6030_0000_0010_0040UL, ArmCoreRegister.Pc);
        Assert.Equal(0x6030_0000_0010_0042UL, ArmCoreRegister.Pstate);
        Assert.Throws<ArgumentOutOfRangeException>(() => ArmCoreRegister.X(31));
        Assert.Throws<ArgumentOutOfRangeException>(() => ArmCoreRegister.X(-1));
    }

    [Fact]
    public void KernelEntryPstateIsEl1hWithDaifMasked()
    {
        Assert.Equal(0x3C5UL, ArmCoreRegister.KernelEntryPstate);
        Assert.Equal(0b0101UL, ArmCoreRegister.KernelEntryPstate & 0xF); // M[3:0] = EL1h
    }

    [Fact]
    public void IrqLineNumbersCarryTheTypeVcpuAndInterruptId()
    {
        Assert.Equal(0x0100_0020u, ArmIrq.Spi(0));   // type SPI, GIC id 32
        Assert.Equal(0x0100_0022u, ArmIrq.Spi(2));   // virtio-mmio slot 0
        Assert.Equal(0x0100_03FBu, ArmIrq.Spi(987)); // GIC id 1019, the last SPI
        Assert.Throws<ArgumentOutOfRangeException>(() => ArmIrq.Spi(988));
        Assert.Equal(0x0203_001Bu, ArmIrq.Ppi(3, 11)); // type PPI, vCPU 3, GIC id 27 (the virtual timer)
        Assert.Throws<ArgumentOutOfRangeException>(() => ArmIrq.Ppi(0, 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => ArmIrq.Ppi(256, 0));
    }

    [Fact]
    public void ArmVirtioSlotsSitAfterThePrimeCellsOnTheirOwnSpis()
    {
        Assert.Equal(new VirtioMmioWindow(0x0A00_0000, 0x200, 2), MicroVmBuilder.ArmVirtioWindow(0));
        Assert.Equal(new VirtioMmioWindow(0x0A00_1200, 0x200, 11), MicroVmBuilder.ArmVirtioWindow(9));
        // SPIs 0 and 1 are the PL011's and the PL031's.
        Assert.Equal(0x0100_0022u, ArmIrq.Spi(MicroVmBuilder.ArmVirtioWindow(0).Irq));
    }

    [Fact]
    public void VcpuInitFeaturesAreTheUapiBitNumbers()
    {
        Assert.Equal(1u << 0, (uint)ArmVcpuFeatures.PowerOff); // KVM_ARM_VCPU_POWER_OFF 0
        Assert.Equal(1u << 2, (uint)ArmVcpuFeatures.Psci02);   // KVM_ARM_VCPU_PSCI_0_2 2
    }

    [Fact]
    public void IoctlNumbersAndStructSizesMatchTheKernelAbi()
    {
        Assert.Equal(32, Unsafe.SizeOf<KvmVcpuInit>());
        Assert.Equal(16, Unsafe.SizeOf<KvmOneReg>());
        Assert.Equal(12, Unsafe.SizeOf<KvmCreateDevice>());
        Assert.Equal(24, Unsafe.SizeOf<KvmDeviceAttr>());
        Assert.Equal(ArmIoctls.GetOneReg, Ioc(1, 0xAB, Unsafe.SizeOf<KvmOneReg>()));
        Assert.Equal(ArmIoctls.SetOneReg, Ioc(1, 0xAC, Unsafe.SizeOf<KvmOneReg>()));
        Assert.Equal(ArmIoctls.VcpuInit, Ioc(1, 0xAE, Unsafe.SizeOf<KvmVcpuInit>()));
        Assert.Equal(ArmIoctls.PreferredTarget, Ioc(2, 0xAF, Unsafe.SizeOf<KvmVcpuInit>()));
        Assert.Equal(ArmIoctls.CreateDevice, Ioc(3, 0xE0, Unsafe.SizeOf<KvmCreateDevice>()));
        Assert.Equal(ArmIoctls.SetDeviceAttr, Ioc(1, 0xE1, Unsafe.SizeOf<KvmDeviceAttr>()));
    }

    /// <summary>_IOC(dir, KVMIO, nr, size) with asm-generic/ioctl.h's layout (dir 1 write, 2 read).</summary>
    private static ulong Ioc(uint dir, uint nr, int size) => (ulong)(dir << 30 | (uint)size << 16 | 0xAEu << 8 | nr);
}
