using StratoVirt.Kvm;
using StratoVirt.Machine;
using StratoVirt.Memory;
using StratoVirt.Tests.Devices;

namespace StratoVirt.Tests.Machine;

/// <summary>A vCPU's exit dispatch, driven by a scripted vCPU: every kind of exit reaches the right bus device or
/// ends the VM with the right cause, and nothing needs /dev/kvm.</summary>
[Trait("Level", "Unit")]
public sealed class VcpuDispatchTests
{
    private readonly IoBus _pio = new("port I/O"), _mmio = new("MMIO");
    private readonly RecordingBusDevice _port = new(), _window = new();

    public VcpuDispatchTests()
    {
        _pio.Register(0x3F8, 8, _port);
        _mmio.Register(0xF010_0000, 0x200, _window);
    }

    /// <summary>Runs <paramref name="script"/> on a vCPU thread until the VM ends or the script is spent.</summary>
    private (MachineExit? Exit, ScriptedVcpu Vcpu) Run(params ScriptedExit[] script) => Run(null, script);

    private (MachineExit? Exit, ScriptedVcpu Vcpu) Run(CoalescedRing? ring, params ScriptedExit[] script)
    {
        var scripted = new ScriptedVcpu(0, script);
        MachineExit? exit = null;
        using var ended = new ManualResetEventSlim();
        var vcpu = new Vcpu(scripted, _pio, _mmio, e => { exit = e; ended.Set(); return true; }, () => { }, signalKicks: false)
        {
            QueuedWrites = ring,
        };
        vcpu.Start();
        // A script that does not end the VM leaves the vCPU idling; give it time to get through, then stop it.
        var until = DateTime.UtcNow.AddSeconds(5);
        while (!ended.IsSet && scripted.Runs < script.Length && DateTime.UtcNow < until) Thread.Sleep(1);
        ended.Wait(TimeSpan.FromMilliseconds(script.Length > 0 && exit is null ? 50 : 0));
        vcpu.Stop(TimeSpan.FromSeconds(2));
        return (exit, scripted);
    }

    [Fact]
    public void PortWritesReadsAndStringIoReachTheDeviceAtTheirOffsets()
    {
        _port.NextRead = [0x5A];
        var (exit, vcpu) = Run(
            ScriptedExit.Out(0x3F8, (byte)'h'),
            ScriptedExit.OutString(0x3F9, 1, "ab"u8.ToArray()),
            ScriptedExit.In(0x3FD, 1));
        Assert.Null(exit);
        Assert.Equal(["0:68", "1:61", "1:62", "5?"], _port.Log);
        Assert.Equal([0x5A], vcpu.Reads.Single());
    }

    [Fact]
    public void WritesKvmQueuedReachTheirDevicesBeforeTheExitThatFollowsThem()
    {
        using var page = new StratoVirt.Tests.Unit.RingPage();
        // What the guest's console does: a byte queued, then the line status poll that exits.
        page.Append(0x3F8, "o"u8);
        page.Append(0x3F8, "k"u8);
        page.Append(0xF010_0070, [0x0F], pio: false);
        _port.NextRead = [0x60];
        var (exit, _) = Run(page.Ring, ScriptedExit.In(0x3FD, 1));
        Assert.Null(exit);
        Assert.Equal(["0:6f", "0:6b", "5?"], _port.Log);
        Assert.Equal(["70:0f"], _window.Log);
        Assert.True(page.Ring.IsEmpty);
    }

    [Fact]
    public void MmioLoadsAndStoresReachTheWindowAndUnclaimedLoadsReadAllOnes()
    {
        _window.NextRead = [1, 2, 3, 4];
        var (exit, vcpu) = Run(
            ScriptedExit.Store(0xF010_0070, 0x0F, 0, 0, 0),
            ScriptedExit.Load(0xF010_0000, 4),
            ScriptedExit.Load(0xD000_0000, 4));
        Assert.Null(exit);
        Assert.Equal(["70:0f000000", "0?"], _window.Log);
        Assert.Equal([1, 2, 3, 4], vcpu.Reads[0]);
        Assert.Equal([0xFF, 0xFF, 0xFF, 0xFF], vcpu.Reads[1]);
    }

    [Fact]
    public void ADeviceThatThrowsFailsOnlyThatAccess()
    {
        _port.Throws = true;
        var (exit, vcpu) = Run(ScriptedExit.In(0x3F8, 1), ScriptedExit.Out(0x3F8, 1));
        Assert.Null(exit);
        Assert.Equal([0xFF], vcpu.Reads.Single());
        Assert.Equal(2, vcpu.Runs);
    }

    public static TheoryData<VcpuExitKind, ulong, ExitCause, int> Endings => new()
    {
        { VcpuExitKind.Hlt, 0, ExitCause.GuestPowerOff, 0 },
        { VcpuExitKind.Shutdown, 0, ExitCause.GuestPanic, 1 },
        { VcpuExitKind.SystemEvent, (ulong)SystemEvent.Shutdown, ExitCause.GuestPowerOff, 0 },
        { VcpuExitKind.SystemEvent, (ulong)SystemEvent.Reset, ExitCause.GuestReset, 0 },
        { VcpuExitKind.SystemEvent, (ulong)SystemEvent.Crash, ExitCause.GuestPanic, 1 },
        { VcpuExitKind.InternalError, 1, ExitCause.HostError, 1 },
        { VcpuExitKind.FailEntry, 0x80000021, ExitCause.HostError, 1 },
        { VcpuExitKind.Unknown, 99, ExitCause.HostError, 1 },
    };

    [Theory]
    [MemberData(nameof(Endings))]
    public void EachEndingExitEndsTheVmWithItsCause(VcpuExitKind kind, ulong detail, ExitCause cause, int code)
    {
        var (exit, _) = Run(ScriptedExit.Out(0x3F8, 1), ScriptedExit.Event(kind, detail));
        Assert.NotNull(exit);
        Assert.Equal(cause, exit.Cause);
        Assert.Equal(code, exit.Code);
        Assert.Equal(["0:01"], _port.Log);
    }

    [Fact]
    public void InterruptedRunsAndIrqWindowsAreNotExits()
    {
        var (exit, vcpu) = Run(ScriptedExit.Event(VcpuExitKind.Interrupted), ScriptedExit.Event(VcpuExitKind.IrqWindowOpen),
            ScriptedExit.Out(0x3F8, 7));
        Assert.Null(exit);
        Assert.Equal(3, vcpu.Runs);
        Assert.Equal(["0:07"], _port.Log);
    }

    [Fact]
    public void PauseParksTheThreadAndResumeLetsItRunOn()
    {
        var scripted = new ScriptedVcpu(0);
        var vcpu = new Vcpu(scripted, _pio, _mmio, _ => true, () => { }, signalKicks: false);
        vcpu.Start();
        Assert.True(vcpu.Pause(TimeSpan.FromSeconds(5)));
        scripted.Enqueue(ScriptedExit.Out(0x3F8, 9));
        Thread.Sleep(50);
        Assert.Empty(_port.Log); // parked: the queued exit is not taken
        vcpu.Resume();
        var until = DateTime.UtcNow.AddSeconds(5);
        while (_port.Log.Count == 0 && DateTime.UtcNow < until) Thread.Sleep(1);
        Assert.Equal(["0:09"], _port.Log);
        vcpu.Stop(TimeSpan.FromSeconds(2));
    }
}

/// <summary>A bus device that logs "offset:hex" for writes and "offset?" for reads, and answers reads from
/// <see cref="NextRead"/>.</summary>
internal sealed class RecordingBusDevice : IBusDevice
{
    private readonly List<string> _log = [];

    public byte[] NextRead { get; set; } = [];
    public bool Throws { get; set; }

    public List<string> Log
    {
        get { lock (_log) return [.. _log]; }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        if (Throws) throw new InvalidOperationException("device broke");
        lock (_log) _log.Add($"{offset:x}?");
        NextRead.AsSpan(0, Math.Min(NextRead.Length, data.Length)).CopyTo(data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (Throws) throw new InvalidOperationException("device broke");
        lock (_log) _log.Add($"{offset:x}:{Convert.ToHexStringLower(data)}");
    }
}
