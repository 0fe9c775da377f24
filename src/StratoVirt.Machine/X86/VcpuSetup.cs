using StratoVirt.Boot;
using StratoVirt.Kvm;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>The architectural state every vCPU starts with, and the 64-bit entry state of the boot vCPU.</summary>
public static class VcpuSetup
{
    private const ulong Cr0Pe = 1, Cr0Et = 1 << 4, Cr0Pg = 1UL << 31;
    private const ulong Cr4Pae = 1 << 5;
    private const ulong EferLme = 1 << 8, EferLma = 1 << 10;

    /// <summary>MSR values Linux expects from firmware; PVM refuses some, which is harmless.</summary>
    private static readonly KvmMsrEntry[] BootMsrs =
    [
        new() { Index = 0x174 }, // IA32_SYSENTER_CS
        new() { Index = 0x175 }, // IA32_SYSENTER_ESP
        new() { Index = 0x176 }, // IA32_SYSENTER_EIP
        new() { Index = 0xC0000081 }, // STAR
        new() { Index = 0xC0000082 }, // LSTAR
        new() { Index = 0xC0000083 }, // CSTAR
        new() { Index = 0xC0000084 }, // SYSCALL_MASK
        new() { Index = 0xC0000102 }, // KERNEL_GS_BASE
        new() { Index = 0x10 }, // TSC
        new() { Index = 0x1A0, Data = 1 }, // IA32_MISC_ENABLE: fast strings
        new() { Index = 0x2FF, Data = (1 << 11) | 6 }, // MTRR default type: enabled, write-back
    ];

    /// <summary>CPUID, MSRs, FPU and local APIC wiring, done for every vCPU.</summary>
    public static void ConfigureCommon(KvmVcpu vcpu, ReadOnlySpan<KvmCpuidEntry2> cpuid)
    {
        vcpu.SetCpuid(cpuid);
        var refused = vcpu.SetMsrs(BootMsrs);
        if (refused.Count > 0)
            Log.Debug($"vCPU {vcpu.Id}: KVM refused MSRs {string.Join(", ", refused.ConvertAll(i => $"0x{i:x}"))}; continuing without them");
        vcpu.SetFpu(new KvmFpu { Fcw = 0x37F, Mxcsr = 0x1F80 });
        ConfigureLapic(vcpu);
    }

    /// <summary>LINT0 delivers ExtINT (the PIC) and LINT1 delivers NMI, as a PC BIOS leaves them.</summary>
    private static void ConfigureLapic(KvmVcpu vcpu)
    {
        var lapic = vcpu.GetLapic();
        const int Lint0 = 0x350, Lint1 = 0x360;
        lapic.SetRegister(Lint0, (lapic.GetRegister(Lint0) & ~0x700u) | 0x700); // delivery mode ExtINT
        lapic.SetRegister(Lint1, (lapic.GetRegister(Lint1) & ~0x700u) | 0x400); // delivery mode NMI
        vcpu.SetLapic(lapic);
    }

    /// <summary>Long mode with identity paging at the kernel's 64-bit entry, RSI pointing at the zero page.</summary>
    public static void ConfigureBoot(KvmVcpu vcpu, BootEntry entry)
    {
        var sregs = vcpu.GetSregs();
        var code = Segment(LongModeTables.Gdt[1], LongModeTables.CodeSelector);
        var data = Segment(LongModeTables.Gdt[2], LongModeTables.DataSelector);
        sregs.Cs = code;
        sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss = data;
        sregs.Tr = Segment(LongModeTables.Gdt[3], LongModeTables.TssSelector);
        sregs.Gdt = new KvmDtable { Base = Layout.Gdt, Limit = (ushort)(LongModeTables.Gdt.Length * 8 - 1) };
        sregs.Idt = new KvmDtable { Base = Layout.Idt, Limit = 7 };
        sregs.Cr0 |= Cr0Pe | Cr0Et | Cr0Pg;
        sregs.Cr3 = Layout.Pml4;
        sregs.Cr4 |= Cr4Pae;
        sregs.Efer |= EferLme | EferLma;
        vcpu.SetSregs(sregs);

        vcpu.SetRegs(new KvmRegs
        {
            Rflags = 0x2, Rip = entry.Entry, Rsp = entry.Stack, Rbp = entry.Stack, Rsi = entry.ZeroPage,
        });
    }

    /// <summary>The reset vector: real mode at F000:FFF0 with CS based at 0xFFFF_0000, so the first instruction
    /// is the firmware's, 16 bytes below 4 GiB (KVM's own reset state, set explicitly).</summary>
    public static void ConfigureResetVector(KvmVcpu vcpu)
    {
        var sregs = vcpu.GetSregs();
        sregs.Cs = new KvmSegment
        {
            Base = ResetCodeBase, Limit = 0xFFFF, Selector = 0xF000, Type = 0xB, S = 1, Present = 1,
        };
        sregs.Cr0 = Cr0Et | 0x6000_0000; // CD and NW set, protection and paging off
        sregs.Cr4 = 0;
        sregs.Efer = 0;
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new KvmRegs { Rflags = 0x2, Rip = ResetIp, Rdx = 0x600 }); // EDX: a family 6 CPU, as at reset
    }

    /// <summary>Where real mode starts: CS base and IP (their sum is 0xFFFF_FFF0).</summary>
    public const ulong ResetCodeBase = 0xFFFF_0000, ResetIp = 0xFFF0;

    /// <summary>Decodes a GDT descriptor into KVM's segment form.</summary>
    public static KvmSegment Segment(ulong descriptor, ushort selector)
    {
        uint limit = (uint)((descriptor & 0xFFFF) | ((descriptor >> 32) & 0xF0000));
        bool granular = ((descriptor >> 55) & 1) != 0;
        return new KvmSegment
        {
            Base = ((descriptor >> 16) & 0xFFFFFF) | ((descriptor >> 32) & 0xFF000000),
            Limit = granular ? (limit << 12) | 0xFFF : limit,
            Selector = selector,
            Type = (byte)((descriptor >> 40) & 0xF),
            S = (byte)((descriptor >> 44) & 1),
            Dpl = (byte)((descriptor >> 45) & 3),
            Present = (byte)((descriptor >> 47) & 1),
            Avl = (byte)((descriptor >> 52) & 1),
            L = (byte)((descriptor >> 53) & 1),
            Db = (byte)((descriptor >> 54) & 1),
            G = (byte)(granular ? 1 : 0),
        };
    }
}
