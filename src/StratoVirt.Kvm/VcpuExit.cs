namespace StratoVirt.Kvm;

/// <summary>Why a vCPU left the guest.</summary>
public enum VcpuExitKind
{
    /// <summary>An IN or OUT the VMM serves (a string instruction may carry several items).</summary>
    Io,
    /// <summary>A load or store to an address no memory slot backs.</summary>
    Mmio,
    /// <summary>HLT with no in-kernel irqchip to wait for an interrupt.</summary>
    Hlt,
    /// <summary>The guest triple-faulted.</summary>
    Shutdown,
    /// <summary>The guest asked for a power-off, reset or crash (<see cref="SystemEvent"/> in the detail).</summary>
    SystemEvent,
    /// <summary>KVM could not emulate an instruction or hit an internal error (suberror in the detail).</summary>
    InternalError,
    /// <summary>The hardware refused to enter the guest (its reason in the detail).</summary>
    FailEntry,
    /// <summary>KVM_RUN returned without an exit: a kick or another signal, or immediate_exit was set.</summary>
    Interrupted,
    /// <summary>The guest can take an interrupt now (only when the VMM asked for the window).</summary>
    IrqWindowOpen,
    /// <summary>Any other reason (its number in the detail).</summary>
    Unknown,
}

/// <summary>The kind of a KVM_EXIT_SYSTEM_EVENT.</summary>
public enum SystemEvent : uint
{
    Shutdown = 1,
    Reset = 2,
    Crash = 3,
}

/// <summary>
/// One exit of a vCPU, decoded from kvm_run: what happened, where, and the data. <see cref="Data"/> lies in the
/// vCPU's kvm_run page (or a fake vCPU's buffer): a write's bytes, or where a read's result goes, valid until the
/// vCPU runs again. A ref struct, so dispatching an exit allocates nothing.
/// </summary>
public readonly ref struct VcpuExit
{
    private VcpuExit(VcpuExitKind kind, ulong address, bool isWrite, int size, int count, Span<byte> data, ulong detail)
    {
        Kind = kind;
        Address = address;
        IsWrite = isWrite;
        Size = size;
        Count = count;
        Data = data;
        Detail = detail;
    }

    public VcpuExitKind Kind { get; }

    /// <summary>The port (Io) or guest physical address (Mmio).</summary>
    public ulong Address { get; }

    /// <summary>OUT or a store (true); IN or a load (false).</summary>
    public bool IsWrite { get; }

    /// <summary>Bytes per access: 1, 2 or 4 for Io, 1 to 8 for Mmio.</summary>
    public int Size { get; }

    /// <summary>Accesses in <see cref="Data"/>, one after another (INS/OUTS); 1 for Mmio.</summary>
    public int Count { get; }

    /// <summary><see cref="Size"/> x <see cref="Count"/> bytes.</summary>
    public Span<byte> Data { get; }

    /// <summary>The <see cref="SystemEvent"/> (SystemEvent), suberror (InternalError), hardware reason (FailEntry) or
    /// raw exit reason (Unknown).</summary>
    public ulong Detail { get; }

    public SystemEvent SystemEventType => (SystemEvent)Detail;

    public static VcpuExit Io(ushort port, bool isWrite, int size, int count, Span<byte> data) =>
        new(VcpuExitKind.Io, port, isWrite, size, count, data, 0);

    public static VcpuExit Mmio(ulong address, bool isWrite, Span<byte> data) =>
        new(VcpuExitKind.Mmio, address, isWrite, data.Length, 1, data, 0);

    public static VcpuExit Of(VcpuExitKind kind, ulong detail = 0) => new(kind, 0, false, 0, 0, default, detail);
}

/// <summary>
/// A vCPU as the machine's exit loop uses it: enter the guest, get why it left. KVM's vCPU is one; a test's scripted
/// vCPU is another, so that exit dispatch and the machine's lifecycle can be tested without /dev/kvm.
/// </summary>
public interface IVcpu : IDisposable
{
    int Id { get; }

    /// <summary>Runs the guest until it exits; an interrupted run (a kick) is <see cref="VcpuExitKind.Interrupted"/>.</summary>
    VcpuExit Run();

    /// <summary>immediate_exit: while set, <see cref="Run"/> returns Interrupted at once, so a kick that lands
    /// outside KVM_RUN is not lost.</summary>
    bool ImmediateExit { get; set; }

    /// <summary>The guest's instruction pointer, for messages; 0 when it cannot be read.</summary>
    ulong InstructionPointer { get; }
}

/// <summary>The guest's clock as the hypervisor keeps it (kvmclock), read and set so that it stands still while
/// the VM is paused.</summary>
public interface IGuestClock
{
    /// <summary>The clock in nanoseconds.</summary>
    ulong Get();

    void Set(ulong nanoseconds);
}
