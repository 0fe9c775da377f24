using System.Text;
using StratoVirt.Devices.Legacy;
using StratoVirt.Machine;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Tests.Unit;
using Xunit;

namespace StratoVirt.Tests.Machine;

/// <summary>When COM1's transmit writes are queued in KVM's ring: while the guest polls the line status and the UART
/// allows it, never once the THR-empty interrupt is on, and never longer than two ticks after the polls stop. The
/// ring page is laid out as KVM's and filled the way KVM would; the zone is recorded instead of set.</summary>
[Trait("Level", "Unit")]
public sealed class SerialTransmitQueueingTests : IDisposable
{
    private const ulong Com1 = 0x3F8, Ier = 1, Lsr = 5, Mcr = 4;

    private readonly RecordingSerialOutput _output = new();
    private readonly Serial16550 _uart;
    private readonly RingPage _page = new();
    private readonly List<bool> _zone = [];
    private readonly List<string> _failures = [];
    private int _wakes;
    private long _now = 1000;
    private Func<bool, Exception?> _zoneFails = _ => null;
    private readonly SerialTransmitQueueing _queueing;

    public SerialTransmitQueueingTests()
    {
        _uart = new Serial16550(new CountingInterruptLine(), _output);
        _queueing = new SerialTransmitQueueing(_uart,
            on =>
            {
                if (_zoneFails(on) is { } e) throw e;
                _zone.Add(on);
            },
            _page.Ring, (port, _, data) => _uart.Write(port - Com1, data), () => _wakes++, _failures.Add, () => _now);
    }

    public void Dispose() => _page.Dispose();

    /// <summary>What KVM does with a transmit write while the zone is in place.</summary>
    private void QueuedByKvm(string text)
    {
        Assert.True(_queueing.Queueing);
        foreach (byte b in Encoding.ASCII.GetBytes(text)) _page.Append(Com1, [b]);
    }

    private string Output => Encoding.ASCII.GetString(_output.Bytes);

    [Fact]
    public void APollAddsTheZoneWhichStaysWhilePollsComeAndGoesWithTheBytesAfterAQuietTick()
    {
        Assert.False(_queueing.Queueing);
        Assert.Equal(-1, _queueing.TimeoutMs); // no timer for a guest that has not polled
        _uart.In(Lsr);
        Assert.True(_queueing.Queueing);
        Assert.Equal([true], _zone);
        Assert.Equal(1, _wakes); // the main loop learns it has a tick to run
        Assert.Equal(SerialTransmitQueueing.TickMs, _queueing.TimeoutMs);

        QueuedByKvm("ab");
        _now += 5;
        _queueing.Tick(); // not due yet
        Assert.True(_queueing.Queueing);
        Assert.Equal(SerialTransmitQueueing.TickMs - 5, _queueing.TimeoutMs);
        _uart.In(Lsr);
        _now += SerialTransmitQueueing.TickMs;
        _queueing.Tick(); // due, with a poll in it: kept
        Assert.True(_queueing.Queueing);
        Assert.Equal("", Output); // the vCPUs drain at their exits; this test has none

        QueuedByKvm("c"); // a last byte, then the guest goes quiet without another exit
        _now += SerialTransmitQueueing.TickMs;
        _queueing.Tick();
        Assert.False(_queueing.Queueing);
        Assert.Equal([true, false], _zone);
        Assert.Equal("abc", Output);
        Assert.True(_page.Ring.IsEmpty);
        Assert.Equal(-1, _queueing.TimeoutMs);
        Assert.Equal(1, _wakes);
    }

    [Fact]
    public void TheThreInterruptOrLoopbackRemoveTheZoneAtOnceAndPollsDoNotAddItBack()
    {
        _uart.In(Lsr);
        _uart.Out(Ier, 0x02); // the tty's interrupt-driven output: its writes must exit to raise THRE
        Assert.False(_queueing.Queueing);
        Assert.Equal([true, false], _zone);
        _uart.In(Lsr);
        Assert.False(_queueing.Queueing);

        _uart.Out(Ier, 0x00);
        Assert.False(_queueing.Queueing); // only a poll adds it
        _uart.In(Lsr);
        Assert.True(_queueing.Queueing);
        _uart.Out(Mcr, 0x10);
        Assert.False(_queueing.Queueing);
        Assert.Equal([true, false, true, false], _zone);
        Assert.Empty(_failures);
    }

    [Fact]
    public void AZoneKvmRefusesLeavesWritesExitingWithOneWarning()
    {
        _zoneFails = on => on ? new SysException("KVM_REGISTER_COALESCED_MMIO port 0x3f8", Libc.ENOMEM) : null;
        _uart.In(Lsr);
        _uart.In(Lsr);
        Assert.False(_queueing.Queueing);
        Assert.Empty(_zone);
        Assert.Empty(_failures);
        Assert.Equal(-1, _queueing.TimeoutMs);
    }

    [Fact]
    public void AZoneThatCannotBeRemovedEndsTheVm()
    {
        _uart.In(Lsr);
        _zoneFails = on => on ? null : new SysException("KVM_UNREGISTER_COALESCED_MMIO port 0x3f8", Libc.ENOMEM);
        _uart.Out(Ier, 0x02);
        Assert.Single(_failures);
        Assert.StartsWith("serial port: KVM_UNREGISTER_COALESCED_MMIO port 0x3f8", _failures[0]);
    }

    [Fact]
    public void FinishServesWhatIsQueued()
    {
        _uart.In(Lsr);
        QueuedByKvm("bye\n");
        _queueing.Finish();
        Assert.Equal("bye\n", Output);
        Assert.Equal(4, _page.Ring.Taken);
    }
}
