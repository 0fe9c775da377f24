using System.Runtime.CompilerServices;
using StratoVirt.Boot;
using StratoVirt.Kvm;
using StratoVirt.Machine;

namespace StratoVirt.Tests.Unit;

/// <summary>KVM struct sizes against linux/kvm.h, segment decoding and CPUID topology.</summary>
[Trait("Level", "Unit")]
public sealed class KvmLayoutTests
{
    [Fact]
    public void StructSizesMatchTheKernelAbi()
    {
        Assert.Equal(0x90, Unsafe.SizeOf<KvmRegs>());
        Assert.Equal(0x138, Unsafe.SizeOf<KvmSregs>());
        Assert.Equal(24, Unsafe.SizeOf<KvmSegment>());
        Assert.Equal(416, Unsafe.SizeOf<KvmFpu>());
        Assert.Equal(40, Unsafe.SizeOf<KvmCpuidEntry2>());
        Assert.Equal(32, Unsafe.SizeOf<KvmUserspaceMemoryRegion>());
        Assert.Equal(64, Unsafe.SizeOf<KvmPitConfig>());
        Assert.Equal(32, Unsafe.SizeOf<KvmIrqfd>());
        Assert.Equal(64, Unsafe.SizeOf<KvmIoeventfd>());
        Assert.Equal(1024, Unsafe.SizeOf<KvmLapicState>());
        Assert.Equal(0x930, Unsafe.SizeOf<KvmRun>());
        Assert.Equal(48, Unsafe.SizeOf<KvmIrqRoutingEntry>());
        Assert.Equal(32, Unsafe.SizeOf<KvmMsi>());
    }

    [Fact]
    public void GsiRoutesStartFromTheIrqchipsDefaultsAndCarryMsiMessages()
    {
        var routes = GsiRoutes.WithIrqchipDefaults();
        // GSIs 0-15 on the IOAPIC and a PIC, 16-23 on the IOAPIC only: what KVM sets up with the irqchip.
        Assert.Equal(24 + 16, routes.Entries.Count);
        Assert.Contains(routes.Entries, e => e is { Gsi: 9, Irqchip: KvmIrqRoutingEntry.IrqchipPicSlave, Pin: 1 });
        Assert.Contains(routes.Entries, e => e is { Gsi: 20, Irqchip: KvmIrqRoutingEntry.IrqchipIoapic, Pin: 20 });
        routes.SetMsi(24, 0xFEE0_1000, 0x4031);
        routes.SetMsi(24, 0x1_FEE0_2000, 0x4032); // reprogrammed: replaces the first
        var msi = Assert.Single(routes.Entries, e => e.Type == KvmIrqRoutingEntry.TypeMsi);
        Assert.Equal((24u, 0xFEE0_2000u, 1u, 0x4032u), (msi.Gsi, msi.MsiAddressLow, msi.MsiAddressHigh, msi.MsiData));
        Assert.Throws<ArgumentOutOfRangeException>(() => routes.SetMsi(5, 0xFEE0_0000, 0));
        routes.Remove(24);
        routes.Remove(5); // the irqchip's own routes stay
        Assert.Equal(24 + 16, routes.Entries.Count);
    }

    [Fact]
    public unsafe void LapicRegistersAreWordsOfThePage()
    {
        var lapic = new KvmLapicState();
        lapic.SetRegister(0x350, 0x0001_0700);
        Assert.Equal(0x0001_0700u, lapic.GetRegister(0x350));
        Assert.Equal((0x00, 0x07, 0x01), (lapic.Regs[0x350], lapic.Regs[0x351], lapic.Regs[0x352]));
        lapic.SetRegister(KvmLapicState.Size - 4, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvmLapicState().GetRegister(KvmLapicState.Size));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvmLapicState().GetRegister(0x352));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvmLapicState().GetRegister(-4));
    }

    [Fact]
    public void GdtDescriptorsDecodeToLongModeSegments()
    {
        var code = VcpuSetup.Segment(LongModeTables.Gdt[1], LongModeTables.CodeSelector);
        Assert.Equal("1 0 1 11 1 4294967295", $"{code.L} {code.Db} {code.S} {code.Type} {code.Present} {code.Limit}");
        var data = VcpuSetup.Segment(LongModeTables.Gdt[2], LongModeTables.DataSelector);
        Assert.Equal("0 1 3 16", $"{data.L} {data.Db} {data.Type} {data.Selector}");
        var tss = VcpuSetup.Segment(LongModeTables.Gdt[3], LongModeTables.TssSelector);
        Assert.Equal("0 11", $"{tss.S} {tss.Type}");
    }

    [Fact]
    public void CpuidCarriesApicIdAndTopology()
    {
        KvmCpuidEntry2[] supported =
        [
            new() { Function = 1, Ebx = 0x00000800, Ecx = 0, Edx = 0 },
            new() { Function = 0xB, Index = 0 },
            new() { Function = 0xB, Index = 1 },
            new() { Function = 0x80000008, Ecx = 0 },
        ];
        var t = new CpuTopology(4, 4, 1, 1, 1, 4, 1);
        var e = CpuidBuilder.ForVcpu(supported, 3, t, tscDeadlineTimer: false);
        Assert.Equal(3u, e[0].Ebx >> 24);
        Assert.Equal(4u, (e[0].Ebx >> 16) & 0xFF);
        Assert.NotEqual(0u, e[0].Ecx & (1u << 31));
        Assert.Equal((3u, 1u, 0u), (e[1].Edx, e[1].Ebx, e[1].Eax));
        Assert.Equal((3u, 4u, 2u), (e[2].Edx, e[2].Ebx, e[2].Eax));
        Assert.Equal(3u, e[3].Ecx & 0xFF);
        Assert.Equal(0u, e[0].Ecx & (1u << 24));
    }

    [Fact]
    public void CpuidOffersTheTscDeadlineTimerWhenKvmEmulatesIt()
    {
        KvmCpuidEntry2[] supported = [new() { Function = 1, Ecx = 1 }];
        var t = new CpuTopology(1, 1, 1, 1, 1, 1, 1);
        Assert.Equal(1u | 1u << 24 | 1u << 31, CpuidBuilder.ForVcpu(supported, 0, t, tscDeadlineTimer: true)[0].Ecx);
        Assert.Equal(1u | 1u << 31, CpuidBuilder.ForVcpu(supported, 0, t, tscDeadlineTimer: false)[0].Ecx);
    }
}
