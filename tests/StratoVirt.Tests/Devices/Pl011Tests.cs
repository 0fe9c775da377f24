using StratoVirt.Devices.Legacy;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class Pl011Tests
{
    private const ulong Dr = 0x00, Fr = 0x18, LcrH = 0x2C, Cr = 0x30, Ifls = 0x34, Imsc = 0x38, Ris = 0x3C, Mis = 0x40, Icr = 0x44;
    private const uint RxFifoEmpty = 1 << 4, RxFifoFull = 1 << 6, TxFifoEmpty = 1 << 7;
    private const uint Rx = 1 << 4, Tx = 1 << 5, RxTimeout = 1 << 6;

    private readonly CountingInterruptLine _irq = new();
    private readonly RecordingSerialOutput _sink = new();
    private readonly Pl011 _uart;

    public Pl011Tests() => _uart = new Pl011(_irq, _sink);

    [Fact]
    public void IdentifiesAsAPl011PrimeCell()
    {
        byte[] ids = [.. Enumerable.Range(0, 8).Select(i => (byte)_uart.Read32(0xFE0 + 4 * (ulong)i))];
        Assert.Equal([0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1], ids);
        Assert.Equal(0x300u, _uart.Read32(Cr));
        Assert.Equal(0x12u, _uart.Read32(Ifls));
        Assert.Equal(TxFifoEmpty | RxFifoEmpty, _uart.Read32(Fr));
    }

    [Fact]
    public void TransmittedBytesLeaveAndRaiseTheTransmitInterrupt()
    {
        _uart.Write32(Dr, 'h');
        _uart.Write32(Dr, 0x169); // only the low 8 bits are data
        Assert.Equal("hi"u8.ToArray(), _sink.Bytes);
        Assert.Equal(Tx, _uart.Read32(Ris));
        Assert.False(_irq.Level); // masked
        _uart.Write32(Imsc, Tx);
        Assert.True(_irq.Level);
        Assert.Equal(Tx, _uart.Read32(Mis));
        _uart.Write32(Icr, Tx);
        Assert.False(_irq.Level);
        Assert.Equal(0u, _uart.Read32(Ris));
    }

    [Fact]
    public void RefusedInputIsReportedOnceTheGuestHasReadTheFifoDownToHalf()
    {
        int reports = 0;
        _uart.InputSpaceAvailable += () => reports++;
        _uart.Write32(LcrH, 0x70); // FIFOs on: 16 bytes
        Assert.Equal(16, _uart.EnqueueInput("0123456789abcdefXYZ"u8));
        for (int i = 0; i < 7; i++) _uart.Read32(Dr);
        Assert.Equal(0, reports); // 9 left: more than half
        Assert.Equal((uint)'7', _uart.Read32(Dr));
        Assert.Equal(1, reports);
        _uart.Read32(Dr);
        Assert.Equal(1, reports); // once per refusal
        Assert.Equal(7, _uart.EnqueueInput("XYZ1234"u8)); // the refused bytes, then more: all fit
        Assert.Equal(1, reports);
    }

    [Fact]
    public void ReceivedBytesRaiseTimeoutThenTriggerLevelAndDropWhenRead()
    {
        _uart.Write32(LcrH, 0x70); // 8 bits, FIFOs on
        _uart.Write32(Imsc, Rx | RxTimeout);
        Assert.Equal(16, _uart.InputRoom);
        Assert.Equal(3, _uart.EnqueueInput("abc"u8));
        Assert.Equal(RxTimeout, _uart.Read32(Ris)); // under the 1/2 level (8)
        Assert.True(_irq.Level);
        Assert.Equal(5, _uart.EnqueueInput("defgh"u8));
        Assert.Equal(Rx | RxTimeout, _uart.Read32(Ris));
        Assert.Equal((uint)'a', _uart.Read32(Dr));
        Assert.Equal(RxTimeout, _uart.Read32(Ris)); // 7 left: below the level
        for (int i = 0; i < 7; i++) Assert.Equal((uint)"bcdefgh"[i], _uart.Read32(Dr));
        Assert.Equal(0u, _uart.Read32(Ris));
        Assert.False(_irq.Level);
        Assert.Equal(TxFifoEmpty | RxFifoEmpty, _uart.Read32(Fr));
    }

    [Fact]
    public void AFullFifoRefusesInputInsteadOfDroppingIt()
    {
        Assert.Equal(1, _uart.EnqueueInput("xy"u8)); // FIFOs off: one byte deep
        Assert.Equal(RxFifoFull, _uart.Read32(Fr) & RxFifoFull);
        Assert.Equal(0, _uart.InputRoom);
        _uart.Write32(LcrH, 0x10); // turning the FIFOs on flushes them
        Assert.Equal(RxFifoEmpty, _uart.Read32(Fr) & RxFifoEmpty);
        Assert.Equal(16, _uart.EnqueueInput(new byte[20]));
        Assert.Equal(0, _uart.InputRoom);
    }

    [Fact]
    public void NarrowAndUnalignedAccessesAreHarmless()
    {
        Span<byte> b = stackalloc byte[1];
        _uart.Read(0xFE8, b);
        Assert.Equal(0x14, b[0]);
        _uart.Write32(Ifls, 0x3F);
        Span<byte> two = stackalloc byte[2];
        _uart.Read(Ifls + 1, two);
        Assert.Equal(0, two[0] | two[1]); // IFLS has 6 bits
        _uart.Write(Dr + 1, [0x41]); // unaligned: ignored
        _uart.Write32(0x800, 0xFFFFFFFF); // unknown offset
        Assert.Equal(0u, _uart.Read32(0x800));
        Assert.Empty(_sink.Bytes);
    }

    [Fact]
    public void TransmitWritesMayBeQueuedWhileTheTransmitInterruptIsMaskedAndFlagReadsArePolls()
    {
        int changes = 0, polls = 0;
        _uart.TransmitQueueingChanged += () => changes++;
        _uart.StatusPolled = () => polls++;
        Assert.True(_uart.TransmitMayBeQueued);

        _uart.Write32(Imsc, Rx | RxTimeout); // receive only: a queued byte raises nothing
        Assert.True(_uart.TransmitMayBeQueued);
        Assert.Equal(0, changes);
        _uart.Write32(Imsc, Rx | Tx); // the tty's interrupt-driven output: every byte written raises TX
        Assert.False(_uart.TransmitMayBeQueued);
        Assert.Equal(1, changes);
        _uart.Write32(Imsc, Rx);
        Assert.True(_uart.TransmitMayBeQueued);
        Assert.Equal(2, changes);

        _uart.Read32(Fr);
        _uart.Read32(Ris);
        _uart.Read32(Fr);
        Assert.Equal(2, polls); // only FR, which the console reads before each byte
    }
}
