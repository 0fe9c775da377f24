using System.Runtime.InteropServices;

namespace StratoVirt.Kvm;

// The structs a snapshot saves and restores, as linux/kvm.h lays them out on x86_64; sizes are asserted by unit
// tests. The VMM never interprets most of them: they go from KVM_GET_* to the snapshot and back to KVM_SET_*.

/// <summary>struct kvm_xcrs: the extended control registers (XCR0).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmXcrs
{
    public uint Count, Flags;
    public fixed byte Xcrs[16 * 16]; // struct kvm_xcr { u32 xcr, reserved; u64 value; }[16]
    public fixed ulong Padding[16];
}

/// <summary>struct kvm_vcpu_events: pending exception, interrupt, NMI and SMI state.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmVcpuEvents
{
    public fixed byte Bytes[64];
}

/// <summary>struct kvm_debugregs: DR0-3, DR6, DR7, flags.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmDebugRegs
{
    public fixed ulong Db[4];
    public ulong Dr6, Dr7, Flags;
    public fixed ulong Reserved[9];
}

/// <summary>struct kvm_mp_state: running, halted, waiting for INIT/SIPI.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMpState
{
    public uint State;
}

/// <summary>struct kvm_irqchip: one of the in-kernel PIC master (0), PIC slave (1) or IOAPIC (2).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmIrqchip
{
    public uint ChipId, Pad;
    public fixed byte Chip[512];

    public const uint PicMaster = 0, PicSlave = 1, Ioapic = 2;
}

/// <summary>struct kvm_pit_state2: the three i8254 channels and the speaker flags.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmPitState2
{
    public fixed byte Channels[3 * 24]; // struct kvm_pit_channel_state[3]
    public uint Flags;
    public fixed uint Reserved[9];
}
