using System.Runtime.InteropServices;

namespace StratoVirt.Kvm;

// Layouts mirror linux/kvm.h on x86_64; sizes are asserted by unit tests.

[StructLayout(LayoutKind.Sequential)]
public struct KvmRegs
{
    public ulong Rax, Rbx, Rcx, Rdx, Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11, R12, R13, R14, R15;
    public ulong Rip, Rflags;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmSegment
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;
    public byte Type, Present, Dpl, Db, S, L, G, Avl, Unusable, Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmDtable
{
    public ulong Base;
    public ushort Limit;
    public ushort Padding0, Padding1, Padding2;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmSregs
{
    public KvmSegment Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldt;
    public KvmDtable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8, Efer, ApicBase;
    public fixed ulong InterruptBitmap[4];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmFpu
{
    public fixed byte Fpr[128];
    public ushort Fcw, Fsw;
    public byte Ftwx, Pad1;
    public ushort LastOpcode;
    public ulong LastIp, LastDp;
    public fixed byte Xmm[256];
    public uint Mxcsr, Pad2;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmCpuidEntry2
{
    public uint Function, Index, Flags, Eax, Ebx, Ecx, Edx;
    public uint Padding0, Padding1, Padding2;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrEntry
{
    public uint Index, Reserved;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmUserspaceMemoryRegion
{
    public uint Slot, Flags;
    public ulong GuestPhysAddr, MemorySize, UserspaceAddr;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmPitConfig
{
    public uint Flags;
    public fixed uint Pad[15];
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmIrqLevel
{
    public uint Irq, Level;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmIrqfd
{
    public uint Fd, Gsi, Flags, ResampleFd;
    public fixed byte Pad[16];

    public const uint FlagDeassign = 1, FlagResample = 2;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmIoeventfd
{
    public ulong Datamatch, Addr;
    public uint Len;
    public int Fd;
    public uint Flags;
    public fixed byte Pad[36];

    public const uint FlagDatamatch = 1, FlagPio = 2, FlagDeassign = 4;
}

/// <summary>struct kvm_coalesced_mmio_zone: writes inside it are queued in the coalesced ring, not exited for.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmCoalescedZone
{
    public ulong Addr;
    public uint Size;
    public uint Pio;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmLapicState
{
    public const int Size = 1024;
    public fixed byte Regs[Size];

    /// <summary>The 32-bit register at <paramref name="offset"/> of the APIC page (0x350: LVT LINT0, ...).</summary>
    public uint GetRegister(int offset)
    {
        CheckRegister(offset);
        // offset is 4-byte aligned and the register lies inside the fixed page (checked above).
        fixed (byte* p = Regs) return *(uint*)(p + offset);
    }

    public void SetRegister(int offset, uint value)
    {
        CheckRegister(offset);
        // offset is 4-byte aligned and the register lies inside the fixed page (checked above).
        fixed (byte* p = Regs) *(uint*)(p + offset) = value;
    }

    private static void CheckRegister(int offset)
    {
        if (offset < 0 || offset > Size - sizeof(uint) || offset % sizeof(uint) != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), $"0x{offset:x} is not an APIC register offset");
    }
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmClockData
{
    public ulong Clock;
    public uint Flags, Pad0;
    public ulong Realtime, HostTsc;
    public fixed uint Pad[4];
}

/// <summary>The shared kvm_run page: fields the VMM reads after KVM_RUN returns.</summary>
[StructLayout(LayoutKind.Explicit, Size = 0x930)]
public struct KvmRun
{
    [FieldOffset(0)] public byte RequestInterruptWindow;
    [FieldOffset(1)] public byte ImmediateExit;
    [FieldOffset(8)] public uint ExitReason;
    // io
    [FieldOffset(32)] public byte IoDirection;
    [FieldOffset(33)] public byte IoSize;
    [FieldOffset(34)] public ushort IoPort;
    [FieldOffset(36)] public uint IoCount;
    [FieldOffset(40)] public ulong IoDataOffset;
    public const byte IoOut = 1;
    // mmio (data at 40, 8 bytes)
    public const ulong MmioDataOffset = 40;
    public const int MmioDataSize = 8;
    [FieldOffset(32)] public ulong MmioPhysAddr;
    [FieldOffset(48)] public uint MmioLen;
    [FieldOffset(52)] public byte MmioIsWrite;
    // fail_entry
    [FieldOffset(32)] public ulong FailEntryReason;
    // internal error / system event share the first two words
    [FieldOffset(32)] public uint InternalSuberror;
    [FieldOffset(32)] public uint SystemEventType;
}

/// <summary>struct kvm_irq_routing_entry: where one GSI goes, an irqchip pin or an MSI message.</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
public struct KvmIrqRoutingEntry
{
    [FieldOffset(0)] public uint Gsi;
    [FieldOffset(4)] public uint Type;
    [FieldOffset(8)] public uint Flags;
    // irqchip
    [FieldOffset(16)] public uint Irqchip;
    [FieldOffset(20)] public uint Pin;
    // msi
    [FieldOffset(16)] public uint MsiAddressLow;
    [FieldOffset(20)] public uint MsiAddressHigh;
    [FieldOffset(24)] public uint MsiData;

    public const uint TypeIrqchip = 1, TypeMsi = 2;
    public const uint IrqchipPicMaster = 0, IrqchipPicSlave = 1, IrqchipIoapic = 2;
}

/// <summary>struct kvm_msi: one message for KVM_SIGNAL_MSI.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmMsi
{
    public uint AddressLow, AddressHigh, Data, Flags, DevId;
    public fixed byte Pad[12];
}
