using StratoVirt.Kvm;

namespace StratoVirt.Tests.Machine;

/// <summary>One step of a scripted vCPU: an exit to hand out, with the bytes of a write.</summary>
internal sealed record ScriptedExit(VcpuExitKind Kind, ulong Address = 0, bool IsWrite = false, int Size = 0,
    int Count = 1, byte[]? Data = null, ulong Detail = 0)
{
    public static ScriptedExit Out(ushort port, params byte[] data) => new(VcpuExitKind.Io, port, true, data.Length, 1, data);
    public static ScriptedExit In(ushort port, int size) => new(VcpuExitKind.Io, port, false, size, 1, new byte[size]);
    public static ScriptedExit OutString(ushort port, int size, byte[] data) => new(VcpuExitKind.Io, port, true, size, data.Length / size, data);
    public static ScriptedExit Store(ulong address, params byte[] data) => new(VcpuExitKind.Mmio, address, true, data.Length, 1, data);
    public static ScriptedExit Load(ulong address, int size) => new(VcpuExitKind.Mmio, address, false, size, 1, new byte[size]);
    public static ScriptedExit Event(VcpuExitKind kind, ulong detail = 0) => new(kind, Detail: detail);
}

/// <summary>
/// A vCPU that replays exits instead of running a guest, so that exit dispatch and the machine's lifecycle are
/// tested without /dev/kvm. After its script it behaves like a guest that keeps running: each run waits until a
/// kick sets immediate_exit and returns Interrupted. What the machine put into read exits is kept in
/// <see cref="Reads"/>.
/// </summary>
internal sealed class ScriptedVcpu(int id, params ScriptedExit[] script) : IVcpu
{
    private readonly Queue<ScriptedExit> _script = new(script);
    private volatile bool _immediateExit;

    public int Id { get; } = id;

    public List<byte[]> Reads { get; } = [];

    /// <summary>Runs that returned an exit (not counting the idle waits after the script).</summary>
    public int Runs { get; private set; }

    public bool Disposed { get; private set; }

    /// <summary>Set once the vCPU ran out of script and waits like a running guest (the machine let it run).</summary>
    public volatile bool Idling;

    /// <summary>When set, a run after the script ignores kicks until this is set: a vCPU thread the host does not
    /// schedule in time.</summary>
    public ManualResetEventSlim? Stuck { get; init; }

    /// <summary>Whether Dispose came while a run was still going on.</summary>
    public bool DisposedWhileRunning { get; private set; }

    private volatile bool _running;

    /// <summary>Whether a run is going on now (the guest idling inside it).</summary>
    public bool InRun => _running;

    public bool ImmediateExit
    {
        get => _immediateExit;
        set => _immediateExit = value;
    }

    public ulong InstructionPointer => 0x1000;

    public VcpuExit Run()
    {
        if (_immediateExit) return VcpuExit.Of(VcpuExitKind.Interrupted);
        ScriptedExit? next;
        lock (_script) _script.TryDequeue(out next);
        if (next is null)
        {
            // The guest idles: only a kick brings the vCPU back.
            _running = true;
            Idling = true;
            Stuck?.Wait();
            while (!_immediateExit) Thread.Sleep(1);
            _running = false;
            return VcpuExit.Of(VcpuExitKind.Interrupted);
        }
        Runs++;
        var data = next.Data ?? [];
        if (next.Kind == VcpuExitKind.Io && !next.IsWrite) Reads.Add(data);
        if (next.Kind == VcpuExitKind.Mmio && !next.IsWrite) Reads.Add(data);
        return next.Kind switch
        {
            VcpuExitKind.Io => VcpuExit.Io((ushort)next.Address, next.IsWrite, next.Size, next.Count, data),
            VcpuExitKind.Mmio => VcpuExit.Mmio(next.Address, next.IsWrite, data),
            _ => VcpuExit.Of(next.Kind, next.Detail),
        };
    }

    /// <summary>Adds exits to the end of the script (a running test feeding the guest's next moves).</summary>
    public void Enqueue(params ScriptedExit[] exits)
    {
        lock (_script) foreach (var e in exits) _script.Enqueue(e);
    }

    public void Dispose()
    {
        DisposedWhileRunning |= _running;
        Disposed = true;
    }
}
