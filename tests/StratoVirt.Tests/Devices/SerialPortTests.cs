using System.Text;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Legacy;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Devices;

/// <summary>The 16550 on a real socket chardev, as -serial chardev:&lt;id&gt; wires it: this test's thread is both the
/// main loop and the vCPU that reads the UART's registers.</summary>
[Trait("Level", "Unit")]
public sealed class SerialPortTests : IDisposable
{
    private const ulong RbrThr = 0, Ier = 1, Mcr = 4, Lsr = 5;

    private readonly TempDir _dir = new();
    private readonly EventLoop _loop = new("serial-test");
    private readonly SocketChardev _chardev;
    private readonly CountingInterruptLine _irq = new();
    private readonly SerialPort _port;
    private readonly UnixClient _client;

    public SerialPortTests()
    {
        string path = Path.Combine(_dir.Path, "serial.sock");
        _chardev = new SocketChardev("ser0", path);
        _port = new SerialPort(_irq, _chardev);
        _port.Attach(_loop);
        _client = new UnixClient(path);
        Assert.True(PumpUntil(() => _chardev.Connected));
    }

    public void Dispose()
    {
        _client.Dispose();
        _chardev.Dispose();
        _loop.Dispose();
        _dir.Dispose();
    }

    private Serial16550 Uart => _port.Uart;

    private bool PumpUntil(Func<bool> done) => _loop.RunUntil(done);

    private bool DataReady => (Uart.In(Lsr) & 0x01) != 0;

    /// <summary>What the guest finds in the receive FIFO now.</summary>
    private string DrainFifo()
    {
        var got = new StringBuilder();
        while (DataReady) got.Append((char)Uart.In(RbrThr));
        return got.ToString();
    }

    [Fact]
    public void GuestOutputReachesTheClientOnceTheLoopsOwnerFlushesIt()
    {
        foreach (byte b in "login: "u8) Uart.Out(RbrThr, b);
        // The loop was woken by the first byte and may wait for the batch's deadline; the machine then flushes.
        Assert.InRange(_port.Output.TimeoutMs, 0, SerialOutputBuffer.FlushDelayMs);
        Assert.True(PumpUntil(() =>
        {
            _port.Output.FlushIfDue();
            return _port.Output.TimeoutMs < 0;
        }));
        Assert.Equal("login: ", _client.Receive(7));
        Assert.Equal(0, _chardev.DroppedBytes);
    }

    [Fact]
    public void ClientInputRaisesTheReceiveInterruptAndArrivesInOrder()
    {
        Uart.Out(Ier, 0x01);
        _client.Send("uname -a\r");
        Assert.True(PumpUntil(() => DataReady));
        Assert.True(_irq.Count >= 1);
        var got = new StringBuilder();
        Assert.True(PumpUntil(() => got.Append(DrainFifo()).Length == 9));
        Assert.Equal("uname -a\r", got.ToString());
        Assert.True(_chardev.InputWatched);
    }

    [Fact]
    public void InputBeyondTheFifoWaitsInTheSocketWithoutWakingTheLoop()
    {
        var sent = new StringBuilder();
        for (int i = 0; i < 1000; i++) sent.Append((char)('a' + i % 26));
        _client.Send(sent.ToString());

        // The FIFO fills and the watch goes off: the rest waits in the socket, and the loop sleeps.
        Assert.True(PumpUntil(() => !_chardev.InputWatched));
        Assert.Equal(0, Uart.InputRoom);
        for (int i = 0; i < 5; i++) Assert.Equal(0, _loop.RunOnce(20));

        // The guest reads; each time the FIFO is half empty, one loop iteration refills it.
        var got = new StringBuilder();
        int handlerRuns = 0;
        while (got.Length < sent.Length)
        {
            string fifo = DrainFifo();
            got.Append(fifo);
            if (fifo.Length == 0)
            {
                int ran = _loop.RunOnce(2000);
                Assert.True(ran > 0, $"no input after {got.Length} bytes");
                handlerRuns += ran;
            }
        }
        Assert.Equal(sent.ToString(), got.ToString());
        // Each refill takes about half a FIFO (32 bytes) in one handler run; a spinning watch would take thousands.
        Assert.True(handlerRuns <= 40, $"{handlerRuns} handler runs");
        Assert.True(_chardev.InputWatched);
    }

    [Fact]
    public void LoopbackHoldsInputBackUntilItEnds()
    {
        Uart.Out(Mcr, 0x10); // loopback: the host side is disconnected
        _client.Send("abc");
        Assert.True(PumpUntil(() => !_chardev.InputWatched));
        for (int i = 0; i < 3; i++) Assert.Equal(0, _loop.RunOnce(20));
        Assert.False(DataReady);

        Uart.Out(Mcr, 0x00);
        Assert.True(_chardev.InputWatched);
        var got = new StringBuilder();
        Assert.True(PumpUntil(() => got.Append(DrainFifo()).Length == 3));
        Assert.Equal("abc", got.ToString());
    }

    [Fact]
    public void TheChardevServesOnlyThisPort()
    {
        var e = Assert.Throws<ChardevException>(() => new SerialPort(_irq, _chardev));
        Assert.Contains("'ser0' is already used", e.Message);
    }
}
