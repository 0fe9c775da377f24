using System.Text;
using StratoVirt.Devices.Chardev;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>virtio-console with one console port, over file and socket chardevs.</summary>
[Trait("Level", "Unit")]
public sealed class ConsoleTests : IDisposable
{
    private const int Rx = 0, Tx = 1;
    private readonly TempDir _dir = new();
    private readonly Disposables _owned = new();

    public void Dispose()
    {
        _owned.Dispose();
        _dir.Dispose();
    }

    private T Own<T>(T d) where T : IDisposable => _owned.Own(d);

    private (TestDriver Driver, SocketChardev Chardev, UnixClient Client) SocketConsole()
    {
        string path = Path.Combine(_dir.Path, "hvc.sock");
        var chardev = Own(new SocketChardev("con0", path));
        var driver = Own(new TestDriver(new VirtioConsole(chardev) { Id = "console0" }));
        Assert.NotEqual(0u, driver.Initialize() & VirtioStatus.DriverOk);
        var client = Own(new UnixClient(path));
        Assert.True(driver.PumpUntil(() => chardev.Connected));
        return (driver, chardev, client);
    }

    /// <summary>Runs the loop until the device has completed chains on <paramref name="q"/>; returns them.</summary>
    private static List<TestCompletion> PumpUntilUsed(TestDriver d, int q)
    {
        var used = new List<TestCompletion>();
        Assert.True(d.PumpUntil(() =>
        {
            used.AddRange(d.TakeUsed(q));
            return used.Count > 0;
        }));
        return used;
    }

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public void IsAConsoleWithTwoQueuesAndNoFeatureBits()
    {
        var chardev = Own(new FileChardev("f", Path.Combine(_dir.Path, "out")));
        var d = Own(new TestDriver(new VirtioConsole(chardev)));
        Assert.Equal(VirtioDeviceId.Console, d.ReadReg(VirtioMmioRegister.DeviceId));
        Assert.Equal(0UL, d.DeviceFeatures() & 0b111); // no SIZE, MULTIPORT or EMERG_WRITE
        d.WriteReg(VirtioMmioRegister.QueueSel, 2);
        Assert.Equal(0u, d.ReadReg(VirtioMmioRegister.QueueNumMax));
        Assert.All(d.ReadConfig(0, 12), b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TransmittedBuffersReachTheFileChardev(bool indirect)
    {
        string path = Path.Combine(_dir.Path, "console.log");
        var chardev = Own(new FileChardev("log", path));
        var d = Own(new TestDriver(new VirtioConsole(chardev)));
        d.Initialize();
        ushort head = d.Add(Tx, [TestBuffer.In(Ascii("Linux version ")), TestBuffer.In(Ascii("6.1\n"))], indirect);
        d.Notify(Tx);
        var c = Assert.Single(d.TakeUsed(Tx));
        Assert.Equal(head, c.Head);
        Assert.Equal(0u, c.Written);
        Assert.True(d.Irq.Count > 0);
        d.Request(Tx, TestBuffer.In(Ascii("login: ")));
        Assert.Equal("Linux version 6.1\nlogin: ", File.ReadAllText(path));
    }

    [Fact]
    public void InputFromTheSocketFillsReceiveBuffers()
    {
        var (d, _, client) = SocketConsole();
        ushort head = d.Add(Rx, [TestBuffer.Out(64)]);
        d.Notify(Rx);
        Assert.Empty(d.TakeUsed(Rx)); // nothing typed yet: the buffer stays available
        int irqs = d.Irq.Count;
        client.Send("ls -l\n");
        var used = PumpUntilUsed(d, Rx);
        var c = Assert.Single(used);
        Assert.Equal(head, c.Head);
        Assert.Equal("ls -l\n", Encoding.ASCII.GetString(c.WrittenBytes));
        Assert.True(d.Irq.Count > irqs);

        d.Request(Tx, TestBuffer.In(Ascii("total 0\n")));
        Assert.Equal("total 0\n", client.Receive(8));
    }

    [Fact]
    public void InputWaitsForReceiveBuffersAndIsNeverDropped()
    {
        var (d, chardev, client) = SocketConsole();
        string text = new string('a', 50) + new string('b', 50);
        client.Send(text);
        for (int i = 0; i < 10; i++) d.Loop.RunOnce(10);
        Assert.False(chardev.InputWatched); // no buffers: the input stays in the socket
        Assert.Equal(0, d.UsedIndex(Rx));

        d.Add(Rx, [TestBuffer.Out(64)]);
        d.Notify(Rx);
        var first = Assert.Single(d.TakeUsed(Rx));
        Assert.Equal(64u, first.Written);
        Assert.False(chardev.InputWatched); // the rest waits again

        d.Add(Rx, [TestBuffer.Out(16), TestBuffer.Out(48)]);
        d.Add(Rx, [TestBuffer.Out(32)]);
        d.Notify(Rx);
        var second = Assert.Single(d.TakeUsed(Rx));
        Assert.Equal(36u, second.Written);
        Assert.Equal(text, Encoding.ASCII.GetString([.. first.WrittenBytes, .. second.WrittenBytes]));
        Assert.True(chardev.InputWatched); // a buffer is left over for more input
    }

    [Fact]
    public void ResetStopsWatchingInputAndANewDriverGetsIt()
    {
        var (d, chardev, client) = SocketConsole();
        d.Add(Rx, [TestBuffer.Out(32)]);
        d.Notify(Rx);
        Assert.True(chardev.InputWatched);
        d.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.False(chardev.InputWatched);
        client.Send("typed while resetting");
        for (int i = 0; i < 5; i++) d.Loop.RunOnce(10);

        d.Initialize();
        d.Add(Rx, [TestBuffer.Out(64)]);
        d.Notify(Rx);
        var used = PumpUntilUsed(d, Rx);
        Assert.Equal("typed while resetting", Encoding.ASCII.GetString(used[0].WrittenBytes));
    }

    [Fact]
    public void AReceiveChainWithoutWritableBuffersNeedsReset()
    {
        var (d, chardev, client) = SocketConsole();
        d.Add(Rx, [TestBuffer.In(Ascii("wrong way"))]);
        d.Notify(Rx);
        client.Send("x");
        Assert.True(d.PumpUntil(() => d.NeedsReset));
        Assert.False(d.Device.Active);
        Assert.False(chardev.InputWatched);
    }

    [Fact]
    public void ATransmitBufferOutsideGuestMemoryNeedsReset()
    {
        var chardev = Own(new FileChardev("log", Path.Combine(_dir.Path, "bad.log")));
        var d = Own(new TestDriver(new VirtioConsole(chardev)));
        d.Initialize();
        d.WriteRawDescriptor(Tx, 0, d.Memory.TotalSize - 8, 64, 0, 0);
        d.Publish(Tx, 0);
        d.Notify(Tx);
        Assert.True(d.NeedsReset);
        Assert.Equal(0, d.UsedIndex(Tx));
        Assert.Equal(0, new FileInfo(Path.Combine(_dir.Path, "bad.log")).Length);
    }

    [Fact]
    public void AChardevCannotBackTwoConsoles()
    {
        var chardev = Own(new FileChardev("shared", Path.Combine(_dir.Path, "s")));
        Own(new VirtioConsole(chardev));
        var e = Assert.Throws<ChardevException>(() => new VirtioConsole(chardev));
        Assert.Contains("'shared' is already used", e.Message);
    }
}
