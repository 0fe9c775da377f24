using StratoVirt.Devices.Legacy;
using Xunit;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class Serial16550Tests
{
    private const ulong Rbr = 0, Thr = 0, Dll = 0, Ier = 1, Dlm = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4;
    private const ulong Lsr = 5, Msr = 6, Scr = 7;

    private readonly CountingInterruptLine _irq = new();
    private readonly RecordingSerialOutput _sink = new();
    private readonly Serial16550 _uart;

    public Serial16550Tests() => _uart = new Serial16550(_irq, _sink);

    [Fact]
    public void LinuxAutoconfigIdentifiesA16550A()
    {
        // IER scratch test: the four interrupt-enable bits must read back.
        byte savedIer = _uart.In(Ier);
        _uart.Out(Ier, 0);
        Assert.Equal(0, _uart.In(Ier) & 0x0F);
        _uart.Out(Ier, 0x0F);
        Assert.Equal(0x0F, _uart.In(Ier) & 0x0F);
        _uart.Out(Ier, savedIer);

        _uart.Out(Scr, 0xA5);
        Assert.Equal(0xA5, _uart.In(Scr));

        // Loopback test: LOOP|OUT2|RTS must show up as DCD|CTS.
        byte savedMcr = _uart.In(Mcr);
        _uart.Out(Mcr, 0x1A);
        Assert.Equal(0x90, _uart.In(Msr) & 0xF0);
        _uart.Out(Mcr, savedMcr);

        // FIFO detection: clear the (absent) EFR, enable the FIFO, expect IIR bits 7:6 set.
        _uart.Out(Lcr, 0xBF);
        _uart.Out(Fcr, 0);
        _uart.Out(Lcr, 0);
        _uart.Out(Fcr, 0x01);
        Assert.Equal(0xC1, _uart.In(Iir));

        // Variant checks that must fail for a plain 16550A: no EFR, no 64-byte FIFO bit, no UUE bit in IER.
        _uart.Out(Lcr, 0xBF);
        Assert.NotEqual(0, _uart.In(Iir));
        _uart.Out(Lcr, 0);
        _uart.Out(Fcr, 0x21);
        Assert.Equal(0, _uart.In(Iir) & 0x20);
        _uart.Out(Ier, 0x40);
        Assert.Equal(0, _uart.In(Ier) & 0x40);
        _uart.Out(Ier, 0);

        _uart.Out(Ier, 0x02);
        Assert.Equal(0xC2, _uart.In(Iir));
        Assert.Equal(0xC1, _uart.In(Iir));
        Assert.Empty(_sink.Bytes);
    }

    [Fact]
    public void LoopbackMirrorsEveryModemControlLine()
    {
        _uart.Out(Mcr, 0x1F);
        Assert.Equal(0xF0, _uart.In(Msr) & 0xF0);
        _uart.Out(Mcr, 0x11); // DTR -> DSR
        Assert.Equal(0x20, _uart.In(Msr) & 0xF0);
        _uart.Out(Mcr, 0x14); // OUT1 -> RI
        Assert.Equal(0x40, _uart.In(Msr) & 0xF0);
        _uart.Out(Mcr, 0x00);
        Assert.Equal(0xB0, _uart.In(Msr) & 0xF0); // host side: DCD, DSR, CTS
    }

    [Fact]
    public void TransmittedBytesReachTheSinkAndEachRaisesThre()
    {
        _uart.Out(Thr, (byte)'o');
        Assert.Equal(0, _irq.Count); // THRI disabled
        Assert.Equal(0x01, _uart.In(Iir));

        _uart.Out(Ier, 0x02);
        Assert.Equal(1, _irq.Count);
        Assert.Equal(0x02, _uart.In(Iir));

        _uart.Out(Thr, (byte)'k');
        Assert.Equal(2, _irq.Count);
        _uart.Out(Thr, (byte)'!'); // no IIR read in between: the write still drops and re-raises THRE
        Assert.Equal(3, _irq.Count);
        Assert.Equal(0x02, _uart.In(Iir));
        Assert.Equal(0x01, _uart.In(Iir));

        Assert.Equal("ok!"u8.ToArray(), _sink.Bytes);
        Assert.Equal(0x60, _uart.In(Lsr) & 0x61); // THRE and TEMT, no data ready
    }

    [Fact]
    public void EnablingThriRaisesThreAgainAfterItWasAcknowledged()
    {
        // Linux's startup test: enable THRI, read IIR, disable, enable again, expect THRE again.
        _uart.Out(Ier, 0x02);
        Assert.Equal(1, _irq.Count);
        Assert.Equal(0x02, _uart.In(Iir));
        Assert.Equal(0x01, _uart.In(Iir));
        _uart.Out(Ier, 0);
        Assert.Equal(0x01, _uart.In(Iir));
        _uart.Out(Ier, 0x02);
        Assert.Equal(2, _irq.Count);
        Assert.Equal(0x02, _uart.In(Iir));
    }

    [Fact]
    public void ReceivedBytesSetDataReadyAndRaiseRxInterrupt()
    {
        _uart.Out(Ier, 0x01);
        Assert.Equal(0, _uart.In(Lsr) & 0x01);
        Assert.Equal(2, _uart.EnqueueInput("hi"u8));
        Assert.Equal(1, _irq.Count);
        Assert.Equal(0x01, _uart.In(Lsr) & 0x01);
        Assert.Equal(0x04, _uart.In(Iir));
        Assert.Equal((byte)'h', _uart.In(Rbr));
        Assert.Equal(0x04, _uart.In(Iir));
        Assert.Equal((byte)'i', _uart.In(Rbr));
        Assert.Equal(0, _uart.In(Lsr) & 0x01);
        Assert.Equal(0x01, _uart.In(Iir));

        Assert.Equal(1, _uart.EnqueueInput("!"u8));
        Assert.Equal(2, _irq.Count);
    }

    [Fact]
    public void InputWithoutRdiSetsDataReadyButRaisesNothing()
    {
        _uart.EnqueueInput("x"u8);
        Assert.Equal(0, _irq.Count);
        Assert.Equal(0x01, _uart.In(Lsr) & 0x01);
        Assert.Equal(0x01, _uart.In(Iir));
        _uart.Out(Ier, 0x01); // enabling RDI with data waiting asserts the line
        Assert.Equal(1, _irq.Count);
    }

    [Fact]
    public void InterruptIdentificationFollowsThePriorityOrder()
    {
        _uart.Out(Mcr, 0x10); // loopback with all outputs low: DCD, DSR and CTS fall, latching deltas
        for (int i = 0; i <= Serial16550.RxFifoCapacity; i++) _uart.Out(Thr, (byte)i); // one too many: overrun
        _uart.Out(Ier, 0x0F);

        Assert.Equal(0x06, _uart.In(Iir));          // line status
        Assert.Equal(0x02, _uart.In(Lsr) & 0x02);   // overrun, cleared by reading LSR
        Assert.Equal(0x04, _uart.In(Iir));          // received data
        for (int i = 0; i < Serial16550.RxFifoCapacity; i++) Assert.Equal((byte)i, _uart.In(Rbr));
        Assert.Equal(0x02, _uart.In(Iir));          // THR empty, acknowledged by this read
        Assert.Equal(0x00, _uart.In(Iir));          // modem status
        Assert.Equal(0x0B, _uart.In(Msr) & 0x0F);   // DDCD, DDSR, DCTS; cleared by reading MSR
        Assert.Equal(0x01, _uart.In(Iir));
        Assert.Empty(_sink.Bytes);
    }

    [Fact]
    public void FullFifoRefusesInputAndSignalsOnceHalfDrained()
    {
        int signals = 0;
        _uart.InputSpaceAvailable += () => signals++;
        byte[] input = new byte[100];
        for (int i = 0; i < input.Length; i++) input[i] = (byte)i;

        Assert.Equal(Serial16550.RxFifoCapacity, _uart.EnqueueInput(input));
        Assert.Equal(0, _uart.InputRoom);
        Assert.Equal(0, _uart.EnqueueInput(input.AsSpan(64)));

        for (int i = 0; i < 31; i++) Assert.Equal((byte)i, _uart.In(Rbr));
        Assert.Equal(31, _uart.InputRoom);
        Assert.Equal(0, signals); // 33 bytes still queued
        Assert.Equal(31, _uart.In(Rbr));
        Assert.Equal(1, signals);

        Assert.Equal(32, _uart.EnqueueInput(input.AsSpan(64)));
        for (int i = 32; i < 96; i++) Assert.Equal((byte)i, _uart.In(Rbr));
        Assert.Equal(2, signals);
        Assert.Equal(0, _uart.In(Lsr) & 0x01);
    }

    [Fact]
    public void DivisorLatchDoesNotTouchDataRegisters()
    {
        _uart.Out(Ier, 0x05);
        _uart.EnqueueInput("x"u8);
        _uart.Out(Lcr, 0x83);
        Assert.Equal(12, _uart.In(Dll)); // reset divisor, 9600 baud
        _uart.Out(Dll, 0x01);
        _uart.Out(Dlm, 0x00);
        Assert.Equal(0x01, _uart.In(Dll));
        Assert.Equal(0x00, _uart.In(Dlm));
        Assert.Equal(0x01, _uart.In(Lsr) & 0x01); // the received byte is still waiting
        _uart.Out(Lcr, 0x03);

        Assert.Equal(0x05, _uart.In(Ier));
        Assert.Equal((byte)'x', _uart.In(Rbr));
        Assert.Empty(_sink.Bytes);
        _uart.Out(Lcr, 0x83);
        Assert.Equal(0x01, _uart.In(Dll));
    }

    [Fact]
    public void LoopbackKeepsBytesFromTheSinkAndHoldsOffInput()
    {
        int signals = 0;
        _uart.InputSpaceAvailable += () => signals++;
        _uart.Out(Mcr, 0x1B);
        _uart.Out(Thr, 0x42);
        Assert.Empty(_sink.Bytes);
        Assert.Equal(0x01, _uart.In(Lsr) & 0x01);
        Assert.Equal(0x42, _uart.In(Rbr));

        Assert.Equal(0, _uart.EnqueueInput("a"u8)); // the host side is disconnected in loopback
        Assert.Equal(0, _uart.InputRoom);

        _uart.Out(Mcr, 0x0B);
        Assert.Equal(1, signals);
        _uart.Out(Thr, 0x43);
        Assert.Equal(new byte[] { 0x43 }, _sink.Bytes);
        Assert.Equal(1, _uart.EnqueueInput("a"u8));
    }

    [Fact]
    public void FifoControlClearsReceivedBytes()
    {
        _uart.Out(Fcr, 0x01);
        _uart.EnqueueInput("abc"u8);
        _uart.Out(Fcr, 0x03);
        Assert.Equal(0, _uart.In(Lsr) & 0x01);
        _uart.EnqueueInput("d"u8);
        _uart.Out(Fcr, 0x00); // leaving FIFO mode empties the FIFO too
        Assert.Equal(0, _uart.In(Lsr) & 0x01);
        Assert.Equal(0x01, _uart.In(Iir)); // bits 7:6 clear without FIFO
    }

    [Fact]
    public void TransmitWritesMayBeQueuedOnlyWithoutTheThreInterruptAndLoopback()
    {
        int changes = 0;
        _uart.TransmitQueueingChanged += () => changes++;
        Assert.True(_uart.TransmitMayBeQueued); // power-on: IER 0, no loopback

        _uart.Out(Ier, 0x01); // received data only: still nothing a queued write could raise
        Assert.True(_uart.TransmitMayBeQueued);
        Assert.Equal(0, changes);

        _uart.Out(Ier, 0x03); // THRI: a transmit write raises an interrupt, so it must be served at once
        Assert.False(_uart.TransmitMayBeQueued);
        Assert.Equal(1, changes);
        _uart.Out(Ier, 0x07);
        Assert.Equal(1, changes); // no change, no event

        _uart.Out(Ier, 0x01);
        Assert.True(_uart.TransmitMayBeQueued);
        Assert.Equal(2, changes);

        _uart.Out(Mcr, 0x10); // loopback: the byte enters the receive FIFO
        Assert.False(_uart.TransmitMayBeQueued);
        _uart.Out(Mcr, 0x0B);
        Assert.True(_uart.TransmitMayBeQueued);
        Assert.Equal(4, changes);

        _uart.Out(Ier, 0x02);
        _uart.Reset(); // a machine reset clears IER
        Assert.True(_uart.TransmitMayBeQueued);
        Assert.Equal(6, changes);
    }

    [Fact]
    public void ARestoreTellsWhetherTransmitWritesMayBeQueued()
    {
        _uart.Out(Ier, 0x02);
        var saved = new StratoVirt.Devices.State.StateWriter();
        _uart.SaveState(saved);
        var restored = new Serial16550(new CountingInterruptLine(), new RecordingSerialOutput());
        int changes = 0;
        restored.TransmitQueueingChanged += () => changes++;
        restored.RestoreState(new StratoVirt.Devices.State.StateReader(saved.ToArray(), restored.StateName));
        Assert.False(restored.TransmitMayBeQueued);
        Assert.Equal(1, changes);
    }

    [Fact]
    public void RegisterAccessesDoNotAllocate()
    {
        var uart = new Serial16550(_irq, new CountingSerialOutput());
        uart.InputSpaceAvailable += () => { };
        Exercise(uart); // first pass JITs everything
        long before = GC.GetAllocatedBytesForCurrentThread();
        Exercise(uart);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(before, after);

        static void Exercise(Serial16550 uart)
        {
            for (int i = 0; i < 1000; i++)
            {
                uart.Out(Ier, 0x03);
                uart.Out(Thr, (byte)i);
                uart.In(Iir);
                uart.In(Lsr);
                uart.EnqueueInput("z"u8);
                uart.In(Rbr);
                uart.In(Msr);
                uart.Out(Ier, 0);
            }
        }
    }

    [Fact]
    public void ConcurrentInputAndReadsLoseNothing()
    {
        const int total = 20_000;
        var producer = new Thread(() =>
        {
            Span<byte> one = stackalloc byte[1];
            for (int i = 0; i < total;)
            {
                one[0] = (byte)i;
                if (_uart.EnqueueInput(one) == 1) i++;
                else Thread.Yield();
            }
        });
        producer.Start();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        int received = 0;
        while (received < total && DateTime.UtcNow < deadline)
        {
            if ((_uart.In(Lsr) & 0x01) == 0) continue;
            Assert.Equal((byte)received, _uart.In(Rbr));
            received++;
        }
        producer.Join();
        Assert.Equal(total, received);
    }
}
