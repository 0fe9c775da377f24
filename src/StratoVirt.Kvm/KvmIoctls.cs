namespace StratoVirt.Kvm;

/// <summary>KVM ioctl request numbers and capability ids (from linux/kvm.h, x86_64).</summary>
public static class KvmIoctls
{
    public const ulong GetApiVersion = 0xAE00;
    public const ulong CreateVm = 0xAE01;
    public const ulong CheckExtension = 0xAE03;
    public const ulong GetVcpuMmapSize = 0xAE04;
    public const ulong GetSupportedCpuid = 0xC008AE05;
    public const ulong CreateVcpu = 0xAE41;
    public const ulong SetUserMemoryRegion = 0x4020AE46;
    public const ulong SetTssAddr = 0xAE47;
    public const ulong SetIdentityMapAddr = 0x4008AE48;
    public const ulong CreateIrqchip = 0xAE60;
    public const ulong IrqLine = 0x4008AE61;
    public const ulong SetGsiRouting = 0x4008AE6A;
    public const ulong Irqfd = 0x4020AE76;
    public const ulong CreatePit2 = 0x4040AE77;
    public const ulong Ioeventfd = 0x4040AE79;
    public const ulong SetClock = 0x4030AE7B;
    public const ulong GetClock = 0x8030AE7C;
    public const ulong Run = 0xAE80;
    public const ulong GetRegs = 0x8090AE81;
    public const ulong SetRegs = 0x4090AE82;
    public const ulong GetSregs = 0x8138AE83;
    public const ulong SetSregs = 0x4138AE84;
    public const ulong SetMsrs = 0x4008AE89;
    public const ulong GetFpu = 0x81A0AE8C;
    public const ulong SetFpu = 0x41A0AE8D;
    public const ulong GetLapic = 0x8400AE8E;
    public const ulong SetLapic = 0x4400AE8F;
    public const ulong SetCpuid2 = 0x4008AE90;
    public const ulong GetMpState = 0x8004AE98;
    public const ulong SetMpState = 0x4004AE99;
    public const ulong GetMsrIndexList = 0xC004AE02;
    public const ulong GetMsrs = 0xC008AE88;
    public const ulong GetIrqchip = 0xC208AE62;
    public const ulong SetIrqchip = 0x8208AE63;
    public const ulong GetPit2 = 0x8070AE9F;
    public const ulong SetPit2 = 0x4070AEA0;
    public const ulong GetVcpuEvents = 0x8040AE9F;
    public const ulong SetVcpuEvents = 0x4040AEA0;
    public const ulong GetDebugRegs = 0x8080AEA1;
    public const ulong SetDebugRegs = 0x4080AEA2;
    public const ulong GetXsave = 0x9000AEA4;
    public const ulong SetXsave = 0x5000AEA5;
    public const ulong GetXcrs = 0x8188AEA6;
    public const ulong SetXcrs = 0x4188AEA7;
    public const ulong GetXsave2 = 0x9000AECF;
    public const ulong SignalMsi = 0x4020AEA5;
    public const ulong RegisterCoalescedMmio = 0x4010AE67;
    public const ulong UnregisterCoalescedMmio = 0x4010AE68;
}

/// <summary>KVM capabilities the VMM asks about.</summary>
public enum KvmCap
{
    Irqchip = 0,
    Hlt = 1,
    UserMemory = 3,
    SetTssAddr = 4,
    /// <summary>The coalesced ring: the value is its page offset in each vCPU's mapping.</summary>
    CoalescedMmio = 15,
    ExtCpuid = 7,
    NrVcpus = 9,
    Irqfd = 32,
    Pit2 = 33,
    Ioeventfd = 36,
    IrqRouting = 25,
    SetIdentityMapAddr = 37,
    MaxVcpus = 66,
    TscDeadlineTimer = 72,
    SignalMsi = 77,
    ReadonlyMem = 81,
    IrqfdResample = 82,
    ImmediateExit = 136,
    Xsave = 55,
    Xcrs = 56,
    VcpuEvents = 41,
    DebugRegs = 50,
    /// <summary>The size of the XSAVE area KVM_GET_XSAVE2 fills, when larger than 4 KiB (AMX).</summary>
    Xsave2 = 208,
    /// <summary>Coalesced zones on the port-I/O bus, not only MMIO.</summary>
    CoalescedPio = 162,
}

/// <summary>Why KVM_RUN returned to user space.</summary>
public enum KvmExit : uint
{
    Unknown = 0,
    Exception = 1,
    Io = 2,
    Hypercall = 3,
    Debug = 4,
    Hlt = 5,
    Mmio = 6,
    IrqWindowOpen = 7,
    Shutdown = 8,
    FailEntry = 9,
    Intr = 10,
    Nmi = 16,
    InternalError = 17,
    SystemEvent = 24,
}
