using StratoVirt.Cli;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Memory;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Rng;

namespace StratoVirt.Tests.Unit;

/// <summary>The complete command lines Kata Containers' runtime builds for StratoVirt (virtcontainers/stratovirt.go,
/// createParams and each device's getParams), in the order Kata writes them.</summary>
[Trait("Level", "Unit")]
public sealed class KataCommandLineTests
{
    private const string VmPath = "/run/vc/vm/5a7b0c1d";
    private const string Uuid = "0f3c9a52-7d1e-4b6a-9c85-2e4f61a0b7d3";
    private const string MicroVmParams = "reboot=k panic=1 net.ifnames=0 ramdom.trust_cpu=on pci=off iommu=off acpi=off";

    /// <summary>createParams: the fixed part, then -initrd when there is one, then the devices.</summary>
    private static string[] KataArgv(string kernelParams, string? initrd, params string[] devices) =>
    [
        "-name", "sandbox-5a7b0c1d", "-uuid", Uuid, "-smp", "1", "-m", "2048",
        "-kernel", "/usr/share/kata-containers/vmlinux.container", "-append", kernelParams,
        "-qmp", $"unix:{VmPath}/qmp.socket,server,nowait", "-D", "-disable-seccomp",
        "-machine", "type=microvm,dump-guest-core=off",
        .. initrd is null ? Array.Empty<string>() : ["-initrd", initrd],
        .. devices,
    ];

    private static readonly string[] Rng =
        ["-object", "rng-random,id=objrng0,filename=/dev/urandom", "-device", "virtio-rng-device,rng=objrng0,id=virtio-rng0"];

    private static readonly string[] DebugConsole =
    [
        "-device", "virtio-serial-device,id=virtio-serial0",
        "-chardev", $"socket,id=charconsole0,path={VmPath}/console.socket,server,nowait",
        "-device", "virtconsole,chardev=charconsole0,id=virtio-console0,nr=0",
    ];

    private static Options Parse(string[] args) => Options.FromArgs(ArgParser.Parse(args, Options.Specs), 24UL << 30);

    private static string Error(string[] args) => Assert.Throws<UsageException>(() => Parse(args)).Message;

    [Fact]
    public void InitrdSandboxInDebugModeParses()
    {
        string append = $"{MicroVmParams} debug console=hvc0";
        var o = Parse(KataArgv(append, "/usr/share/kata-containers/kata-containers-initrd.img", [.. Rng, .. DebugConsole]));
        var m = o.Machine;
        Assert.Equal("sandbox-5a7b0c1d", m.Name);
        Assert.Equal(1, m.Cpus.Count);
        Assert.Equal(2048UL << 20, m.MemorySize);
        Assert.Equal("/usr/share/kata-containers/vmlinux.container", m.KernelPath);
        Assert.Equal("/usr/share/kata-containers/kata-containers-initrd.img", m.InitrdPath);
        Assert.Equal(append, m.CommandLine);
        Assert.Equal([new StratoVirt.Qmp.MonitorEndpoint.Unix($"{VmPath}/qmp.socket")], o.Monitors);
        Assert.True(m.HotplugSlots);
        Assert.False(m.DumpGuestCore);
        Assert.True(o.LogEnabled);
        Assert.Null(o.LogFile); // -D with no file logs to stderr, which Kata reads
        Assert.Null(m.Serial);
        Assert.Equal(2, m.Devices.Count);
        var rng = Assert.IsType<RngDeviceConfig>(m.Devices[0]);
        Assert.Equal(("virtio-rng0", "/dev/urandom"), (rng.Id, rng.SourcePath));
        var console = Assert.IsType<ConsoleDeviceConfig>(m.Devices[1]);
        Assert.Equal("virtio-console0", console.Id);
        Assert.Equal(new ChardevConfig.UnixSocket("charconsole0", $"{VmPath}/console.socket", true, true), console.Chardev);
    }

    [Fact]
    public void ImageSandboxWithRootfsDriveParses()
    {
        // No initrd: Kata puts the rootfs parameters first and the image on mmio block slot 0.
        string append = $"root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 {MicroVmParams} " +
                        "quiet 8250.nr_uarts=0 agent.log_vport=1025";
        var m = Parse(KataArgv(append, null,
        [
            .. Rng,
            "-drive", "id=rootfs,file=/usr/share/kata-containers/kata-containers.img,readonly=on,direct=off",
            "-device", "virtio-blk-device,drive=rootfs,id=virtio-blk0",
        ])).Machine;
        Assert.Null(m.InitrdPath);
        Assert.Equal(append, m.CommandLine);
        var blk = Assert.IsType<BlockDeviceConfig>(m.Devices[0]);
        Assert.Equal(("virtio-blk0", "/usr/share/kata-containers/kata-containers.img", true, false),
            (blk.Id, blk.Path, blk.ReadOnly, blk.Direct));
        Assert.IsType<RngDeviceConfig>(m.Devices[1]);
    }

    [Theory]
    [InlineData("0F3C9A52-7D1E-4B6A-9C85-2E4F61A0B7D3")]
    [InlineData("00000000-0000-0000-0000-000000000000")]
    public void UuidSpellingsAreAccepted(string uuid) =>
        Assert.Equal("k", Parse(["-machine", "microvm", "-kernel", "k", "-uuid", uuid]).Machine.KernelPath);

    [Theory]
    [InlineData("1234")]
    [InlineData("0f3c9a527d1e4b6a9c852e4f61a0b7d3")]        // no dashes
    [InlineData("{0f3c9a52-7d1e-4b6a-9c85-2e4f61a0b7d3}")]  // braces
    [InlineData("0f3c9a52-7d1e-4b6a-9c85-2e4f61a0b7dg")]    // not hex
    public void MalformedUuidsAreRefusedNamingTheValue(string uuid) =>
        Assert.Equal($"option -uuid: '{uuid}' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex digits)",
            Error(["-machine", "microvm", "-kernel", "k", "-uuid", uuid]));

    [Fact]
    public void VhostVsockWithAVhostFdIsRefusedSayingWhy()
    {
        string message = Error(KataArgv(MicroVmParams, "/i", "-device", "vhost-vsock-device,id=vsock-id,guest-cid=3,vhostfd=3"));
        Assert.Equal("option -device: vhost-vsock-device vhostfd=3 hands over an open /dev/vhost-vsock, but this build " +
                     "implements vsock in user space only; give uds-path=<socket> instead", message);
    }

    [Fact]
    public void MemShareForVirtioFsGivesSharedMemfdRam()
    {
        string[] args = KataArgv(MicroVmParams, "/i");
        args[Array.IndexOf(args, "type=microvm,dump-guest-core=off")] = "type=microvm,dump-guest-core=off,mem-share=on";
        var machine = Options.FromArgs(ArgParser.Parse(args, Options.Specs), 24UL << 30).Machine;
        Assert.Equal((RamBackingKind.Memfd, true, false), (machine.Ram.Kind, machine.Ram.Shared, machine.DumpGuestCore));
    }

    [Theory]
    [InlineData("nr=1", "out of range 0-0")]
    [InlineData("nr=x", "not a number")]
    public void VirtconsoleTakesOnlyPortZero(string nr, string expected) =>
        Assert.Contains(expected, Error(KataArgv(MicroVmParams, "/i",
            "-device", "virtio-serial-device,id=virtio-serial0", "-chardev", "socket,id=c,path=/tmp/c.sock,server,nowait",
            "-device", $"virtconsole,chardev=c,id=virtio-console0,{nr}")));

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void DumpGuestCoreOffMarksGuestRamDontDump(bool dumpable, bool expectDontDump)
    {
        using var memory = new GuestRegion(0, 4UL << 20, dumpable);
        // The VMA holding the region in /proc/self/smaps (the kernel may merge it with a neighbour); VmFlags "dd" is
        // MADV_DONTDUMP.
        ulong address = (ulong)memory.HostAddress;
        string[] smaps = File.ReadAllLines("/proc/self/smaps");
        int at = Array.FindIndex(smaps, l => VmaRange(l) is (var from, var to) && from <= address && address < to);
        Assert.True(at >= 0, $"mapping 0x{address:x} not in /proc/self/smaps");
        string flags = smaps.Skip(at + 1).First(l => l.StartsWith("VmFlags:", StringComparison.Ordinal));
        Assert.Equal(expectDontDump, flags.Split(' ').Contains("dd"));
    }

    /// <summary>"start-end perms ..." header lines of /proc/self/smaps, as numbers; null for other lines.</summary>
    private static (ulong From, ulong To)? VmaRange(string line)
    {
        int dash = line.IndexOf('-'), space = line.IndexOf(' ');
        if (dash <= 0 || space <= dash) return null;
        var style = System.Globalization.NumberStyles.AllowHexSpecifier;
        return ulong.TryParse(line.AsSpan(0, dash), style, null, out ulong from)
               && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), style, null, out ulong to)
            ? (from, to) : null;
    }
}
