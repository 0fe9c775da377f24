using System.Globalization;
using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Devices.State;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>A device type added through the registry alone: the command line parses it, with a backend object of its
/// own, and the machine's path creates it and serves it through the MMIO transport.</summary>
[Trait("Level", "Unit")]
public sealed class DeviceRegistryTests
{
    /// <summary>A test-only device: one queue; each request's bytes come back in its writable buffers, XORed with the
    /// byte its -object echo-key gives.</summary>
    private sealed class EchoDevice(byte key) : VirtioDevice(0x7F, 1)
    {
        private readonly DescriptorChain _chain = new();
        private readonly byte[] _buffer = new byte[256];

        public byte Key => key;

        protected override ulong DeviceFeatures => 0;

        public override void ProcessQueue(int index)
        {
            var queue = Queue(index);
            while (queue.Pop(_chain))
            {
                int n = _chain.Read(0, _buffer);
                for (int i = 0; i < n; i++) _buffer[i] ^= key;
                queue.AddUsed(_chain.Head, (uint)_chain.Write(0, _buffer.AsSpan(0, n)));
            }
            SignalUsed(queue);
        }

        public override string StateName => "echo";
        public override int StateVersion => 1;
        protected override void SaveDeviceState(StateWriter writer) => writer.WriteUInt64(Features);
        protected override void RestoreDeviceState(StateReader reader) => RestoreFeatures(reader.ReadUInt64());
    }

    private sealed record EchoKey(string Id, byte Value);

    private sealed record EchoConfig(string Id, byte Key) : VirtioDeviceConfig(Id)
    {
        private static readonly VirtioBackendOption KeyObject = new("-object", "echo-key")
        {
            Parameters = ["value"],
            Parse = (v, id) => new EchoKey(id, byte.Parse(v.Get("value") ?? "0", NumberStyles.HexNumber, CultureInfo.InvariantCulture)),
        };

        public static readonly VirtioDeviceType Type = new("virtio-echo", VirtioSlotClass.Other)
        {
            Drivers = [new("virtio-echo-device", ["key"], (v, context) =>
                new EchoConfig(context.DeviceId(v), context.Backend<EchoKey>(v, "key", KeyObject.Name).Value))],
            Backends = [KeyObject],
            Usage = ["-object echo-key,id=<k>,value=<hex>  -device virtio-echo-device,key=<k>"],
        };

        public override VirtioDeviceType DeviceType => Type;

        protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) => new EchoDevice(Key) { Id = Id };
    }

    private static readonly VirtioDeviceRegistry Registry = VirtioDeviceRegistry.Default.With(EchoConfig.Type);

    private static IReadOnlyList<VirtioDeviceConfig> Parse(VirtioDeviceRegistry registry, params string[] devices) =>
        Options.FromArgs(ArgParser.Parse(["-machine", "microvm", "-kernel", "/k", .. devices], Options.Specs), 24UL << 30, registry)
            .Machine.Devices;

    [Fact]
    public void ADeviceAddedToTheRegistryIsParsedCreatedAndServedThroughMmio()
    {
        var configs = Parse(Registry, "-object", "rng-random,id=r,filename=/dev/urandom", "-device", "virtio-rng-device,rng=r",
            "-object", "echo-key,id=k,value=5a", "-device", "virtio-echo-device,key=k,id=echo0",
            "-drive", "id=d,file=/x", "-device", "virtio-blk-device,drive=d");
        Assert.Equal(["virtio-blk", "virtio-rng", "virtio-echo"], configs.Select(c => c.DeviceType.Name));
        var config = Assert.IsType<EchoConfig>(configs[2]);
        Assert.Equal(("echo0", (byte)0x5A), (config.Id, config.Key));

        using var loop = new EventLoop("echo");
        var device = config.Create(new VirtioDeviceResources(64 << 20, _ => throw new InvalidOperationException(), loop));
        Assert.Same(loop, device.Loop);
        using var d = new TestDriver(device);
        Assert.Equal(0x7Fu, d.ReadReg(VirtioMmioRegister.DeviceId));
        Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
        var c = d.Request(0, TestBuffer.In([0x00, 0x5A, 0xFF]), TestBuffer.Out(3));
        Assert.Equal([0x5A, 0x00, 0xA5], c.WrittenBytes);
        Assert.True(d.Irq.Count > 0);
    }

    [Fact]
    public void ItsOptionsAreCheckedLikeAnyDevices()
    {
        string Error(params string[] args) => Assert.Throws<UsageException>(() => Parse(Registry, args)).Message;
        Assert.Equal("option -device: virtio-echo-device key=k: no -object echo-key with id 'k'",
            Error("-device", "virtio-echo-device,key=k"));
        Assert.Equal("option -device: -object echo-key 'k' is used by two devices", Error("-object", "echo-key,id=k",
            "-device", "virtio-echo-device,key=k", "-device", "virtio-echo-device,key=k"));
        Assert.StartsWith("option -device: unknown parameter 'colour'", Error("-device", "virtio-echo-device,colour=red"));
        Assert.Equal("option -object: unknown object type 'nope' (iothread, memory-backend-* or rng-random or echo-key)", Error("-object", "nope,id=n"));
        // Without the registration the driver is unknown.
        Assert.Equal("option -device: unknown or unsupported driver 'virtio-echo-device'",
            Assert.Throws<UsageException>(() => Parse(VirtioDeviceRegistry.Default, "-device", "virtio-echo-device,key=k")).Message);
    }

    [Fact]
    public void SlotOrderHotplugAndHelpComeFromTheRegistry()
    {
        var registry = VirtioDeviceRegistry.Default;
        Assert.Equal(["virtio-blk", "virtio-net", "virtio-console", "virtio-rng", "virtio-balloon", "vhost-vsock", "vhost-user-fs",
            "vhost-user-blk"],
            registry.Types.Select(t => t.Name));
        Assert.Equal("virtio-blk", registry.Hotpluggable("virtio-blk-mmio")?.Name);
        Assert.Equal("virtio-net", registry.Hotpluggable("virtio-net-device")?.Name);
        Assert.Null(registry.Hotpluggable("virtio-rng-device"));
        Assert.Equal("virtio-blk and virtio-net", registry.HotpluggableNames);
        Assert.Contains("-device vhost-vsock-device,id=<id>,guest-cid=<n>[,uds-path=<socket>]", registry.Usage);
        Assert.Contains(registry.Usage, u => u.Contains("-device vhost-user-fs-device,chardev=<c>,tag=<tag>,id=<id>", StringComparison.Ordinal));
        Assert.Contains("-device virtio-echo-device,key=<k>", string.Join('\n', Registry.Usage));
        Assert.Throws<ArgumentException>(() => registry.With(registry.Types[0]));
    }
}
