using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Devices.Chardev;
using StratoVirt.Machine;
using StratoVirt.Qmp;

namespace StratoVirt.Tests.Unit;

/// <summary>Upstream StratoVirt's command-line spellings and the errors for bad values.</summary>
[Trait("Level", "Unit")]
public sealed class CommandLineTests
{
    private static Options Parse(params string[] args) =>
        Options.FromArgs(ArgParser.Parse(args, Options.Specs), hostMemory: 24UL << 30);

    private static string Error(params string[] args) =>
        Assert.Throws<UsageException>(() => Parse(args)).Message;

    [Fact]
    public void QuickstartFormParses()
    {
        var o = Parse("-machine", "microvm", "-kernel", "/k", "-append", "console=ttyS0 reboot=k panic=1",
            "-initrd", "/i", "-m", "256", "-smp", "2", "-serial", "stdio", "-name", "vm1", "-D");
        Assert.Equal("/k", o.Machine.KernelPath);
        Assert.Equal("/i", o.Machine.InitrdPath);
        Assert.Equal(256UL << 20, o.Machine.MemorySize);
        Assert.Equal(2, o.Machine.Cpus.Count);
        Assert.IsType<ChardevConfig.Stdio>(o.Machine.Serial);
        Assert.Equal("vm1", o.Machine.Name);
        Assert.True(o.LogEnabled);
        Assert.Null(o.LogFile);
    }

    [Theory]
    [InlineData("256", 256UL << 20)]
    [InlineData("256M", 256UL << 20)]
    [InlineData("1024m", 1024UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("size=512M", 512UL << 20)]
    [InlineData("2G,maxmem=4G", 2UL << 30)]
    public void MemorySpellings(string value, ulong bytes) =>
        Assert.Equal(bytes, Parse("-machine", "microvm", "-kernel", "k", "-m", value).Machine.MemorySize);

    [Theory]
    [InlineData("0", "greater than zero")]
    [InlineData("1T", "exceeds the maximum of 512 GiB")]
    [InlineData("64M", "below the minimum")]
    [InlineData("100G", "exceeds this host")]
    [InlineData("12Q", "unknown unit")]
    [InlineData("lots", "not a size")]
    public void BadMemoryIsRefusedNamingTheValue(string value, string expected)
    {
        string message = Error("-machine", "microvm", "-kernel", "k", "-m", value);
        Assert.Contains(expected, message);
        Assert.Contains("-m", message);
    }

    [Theory]
    [InlineData("4", 4)]
    [InlineData("cpus=2,sockets=1,cores=2,threads=1", 2)]
    [InlineData("cpus=2,maxcpus=4", 2)]
    [InlineData("254", 254)]
    public void SmpSpellings(string value, int count) =>
        Assert.Equal(count, Parse("-machine", "microvm", "-kernel", "k", "-smp", value).Machine.Cpus.Count);

    [Theory]
    [InlineData("0", "cpus=0 is out of range 1-254")]
    [InlineData("255", "cpus=255 is out of range 1-254")]
    [InlineData("cpus=4,sockets=3,cores=1", "must equal maxcpus")]
    [InlineData("cpus=4,maxcpus=2", "less than cpus")]
    [InlineData("cpus=x", "not a number")]
    public void BadSmpIsRefused(string value, string expected) =>
        Assert.Contains(expected, Error("-machine", "microvm", "-kernel", "k", "-smp", value));

    [Fact]
    public void MachineSpellings()
    {
        Assert.True(Parse("-machine", "type=microvm,dump-guest-core=off", "-kernel", "k").Machine.Acpi);
        Assert.False(Parse("-machine", "microvm,acpi=off", "-kernel", "k").Machine.Acpi);
        Assert.Equal(MachineType.Q35, Parse("-machine", "q35", "-kernel", "k").Machine.Type);
        Assert.False(Parse("-machine", "q35", "-kernel", "k", "-qmp", "unix:/tmp/q.sock,server,nowait").Machine.HotplugSlots);
        Assert.Contains("not supported by this build", Error("-machine", "virt", "-kernel", "k"));
        Assert.Contains("unknown machine type 'pc'", Error("-machine", "pc", "-kernel", "k"));
        Assert.Contains("unknown parameter 'foo'", Error("-machine", "microvm,foo=1", "-kernel", "k"));
    }

    [Fact]
    public void NoRebootIsAFlagOffByDefault()
    {
        Assert.False(Parse("-machine", "q35", "-kernel", "k").Machine.NoReboot);
        Assert.True(Parse("-machine", "q35", "-kernel", "k", "-no-reboot").Machine.NoReboot);
        Assert.True(Parse("-machine", "microvm", "-kernel", "k", "-no-reboot").Machine.NoReboot); // a microVM ends on reset anyway
    }

    [Fact]
    public void AppendMayRepeatAndLogFileIsOptional()
    {
        var o = Parse("-machine", "microvm", "-kernel", "k", "-append", "a=1", "-append", "b=2", "-D", "/tmp/log");
        Assert.Equal("a=1 b=2", o.Machine.CommandLine);
        Assert.Equal("/tmp/log", o.LogFile);
    }

    [Fact]
    public void UnknownAndIncompleteOptionsAreRefused()
    {
        Assert.Contains("unknown option '-bogus'", Error("-machine", "microvm", "-kernel", "k", "-bogus"));
        Assert.Contains("-kernel needs a value", Error("-machine", "microvm", "-kernel"));
        Assert.Contains("-kernel is required", Error("-machine", "microvm"));
        Assert.Contains("given more than once", Error("-machine", "microvm", "-kernel", "a", "-kernel", "b"));
        Assert.Contains("unexpected argument 'stray'", Error("-machine", "microvm", "-kernel", "k", "stray"));
        Assert.Contains("option -qmp: 'server' and 'nowait' are required", Error("-machine", "microvm", "-kernel", "k", "-qmp", "tcp:127.0.0.1:4444"));
    }

    [Fact]
    public void LibvirtNoOpOptionsAreAccepted()
    {
        var o = Parse("-machine", "microvm", "-kernel", "k", "-uuid", "6a1e4f2c-03b5-4d7e-8f90-1a2b3c4d5e6f", "-nodefaults", "-no-user-config",
            "-nographic", "-disable-seccomp");
        Assert.Equal("k", o.Machine.KernelPath);
    }

    [Fact]
    public void SerialBackends()
    {
        Assert.Equal("/tmp/s", Assert.IsType<ChardevConfig.File>(Parse("-machine", "microvm", "-kernel", "k", "-serial", "file,path=/tmp/s").Machine.Serial).Path);
        Assert.Contains("unknown backend", Error("-machine", "microvm", "-kernel", "k", "-serial", "telnet"));
    }

    private static readonly string[] Base = ["-machine", "microvm", "-kernel", "k"];

    [Fact]
    public void SerialTakesUpstreamsChardevForms()
    {
        ChardevConfig? Serial(params string[] args) => Parse([.. Base, .. args]).Machine.Serial;
        Assert.Null(Serial());
        Assert.Equal(new ChardevConfig.Stdio("serial_chardev"), Serial("-serial", "stdio"));
        Assert.Equal(new ChardevConfig.Pty("serial_chardev"), Serial("-serial", "pty"));
        Assert.Equal(new ChardevConfig.File("serial_chardev", "/tmp/s"), Serial("-serial", "file,path=/tmp/s"));
        Assert.Equal(new ChardevConfig.UnixSocket("serial_chardev", "/run/s.sock", true, true),
            Serial("-serial", "socket,path=/run/s.sock,server,nowait"));
        Assert.Equal(new ChardevConfig.UnixSocket("ser0", "/run/s.sock", true, true),
            Serial("-chardev", "socket,id=ser0,path=/run/s.sock,server,nowait", "-serial", "chardev:ser0"));
        Assert.Equal(new ChardevConfig.Pty("p"), Serial("-serial", "chardev:p", "-chardev", "pty,id=p"));
        // Not stdio: the daemon may have it.
        Assert.True(Parse([.. Base, "-serial", "pty", "-daemonize"]).Daemonize);
    }

    [Theory]
    [InlineData("option -serial: unknown backend 'telnet'", "-serial", "telnet")]
    [InlineData("option -serial: file chardev 'serial_chardev' needs path=", "-serial", "file")]
    [InlineData("option -serial: chardev 'serial_chardev': only server sockets are supported (add server,nowait)",
        "-serial", "socket,path=/s")]
    [InlineData("option -serial: TCP sockets serve only -mon in this build; use path=",
        "-serial", "socket,host=127.0.0.1,port=4446,server,nowait")]
    [InlineData("option -serial: unknown parameter 'id'", "-serial", "stdio,id=s")]
    [InlineData("option -serial is given more than once", "-serial", "stdio", "-serial", "pty")]
    [InlineData("option -serial: no -chardev with id 'c'", "-serial", "chardev:c")]
    [InlineData("option -serial: chardev 't': TCP chardevs serve only -mon in this build; use path=",
        "-chardev", "socket,id=t,host=127.0.0.1,port=1,server,nowait", "-serial", "chardev:t")]
    [InlineData("option -serial: chardev 'c' is used by the -mon monitor",
        "-chardev", "socket,id=c,path=/s,server,nowait", "-serial", "chardev:c", "-mon", "chardev=c,id=m")]
    [InlineData("option -serial: chardev 'c' is used by a device",
        "-chardev", "socket,id=c,path=/s,server,nowait", "-serial", "chardev:c",
        "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c")]
    [InlineData("option -device: virtconsole chardev=serial_chardev: no -chardev with id 'serial_chardev'",
        "-serial", "stdio", "-device", "virtio-serial-device", "-device", "virtconsole,chardev=serial_chardev")]
    [InlineData("option -serial: stdio is already the console of virtconsole 'con0'",
        "-serial", "stdio", "-chardev", "stdio,id=c", "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c,id=con0")]
    [InlineData("option -serial: stdio is already the console of virtconsole 'con0'",
        "-chardev", "stdio,id=s", "-serial", "chardev:s", "-chardev", "stdio,id=c", "-device", "virtio-serial-device",
        "-device", "virtconsole,chardev=c,id=con0")]
    [InlineData("option -serial: stdio cannot be used with -daemonize", "-serial", "stdio", "-daemonize")]
    [InlineData("option -serial: stdio cannot be used with -daemonize", "-chardev", "stdio,id=s", "-serial", "chardev:s", "-daemonize")]
    public void BadSerialsAreRefused(string message, params string[] args) => Assert.StartsWith(message, Error([.. Base, .. args]));

    [Fact]
    public void QmpTakesUnixAndTcpEndpoints()
    {
        Assert.Equal([new MonitorEndpoint.Unix("/run/q.sock")], Parse([.. Base, "-qmp", "unix:/run/q.sock,server,nowait"]).Monitors);
        Assert.Equal([new MonitorEndpoint.Tcp(System.Net.IPAddress.Loopback, 4444)],
            Parse([.. Base, "-qmp", "tcp:127.0.0.1:4444,server,nowait"]).Monitors);
        Assert.Empty(Parse(Base).Monitors);
        Assert.Contains("option -qmp: invalid host 'example.org'", Error([.. Base, "-qmp", "tcp:example.org:4444,server,nowait"]));
        Assert.Contains("option -qmp: invalid port '99999'", Error([.. Base, "-qmp", "tcp:127.0.0.1:99999,server,nowait"]));
    }

    [Fact]
    public void MonTakesASocketChardevAsUpstreamDoes()
    {
        var o = Parse([.. Base, "-chardev", "socket,id=qmp0,path=/run/mon.sock,server,nowait", "-mon", "chardev=qmp0,id=monitor,mode=control"]);
        Assert.Equal([new MonitorEndpoint.Unix("/run/mon.sock")], o.Monitors);
        o = Parse([.. Base, "-chardev", "socket,id=t,host=127.0.0.1,port=4445,server,nowait", "-mon", "chardev=t,id=m",
            "-qmp", "unix:/run/q.sock,server,nowait"]);
        Assert.Equal([new MonitorEndpoint.Unix("/run/q.sock"), new MonitorEndpoint.Tcp(System.Net.IPAddress.Loopback, 4445)],
            o.Monitors);
    }

    [Theory]
    [InlineData("option -mon: mode=readline is not supported; only mode=control",
        "-chardev", "socket,id=c,path=/s,server,nowait", "-mon", "chardev=c,id=m,mode=readline")]
    [InlineData("option -mon: chardev= is required", "-mon", "id=m")]
    [InlineData("option -mon: no -chardev with id 'c'", "-mon", "chardev=c,id=m")]
    [InlineData("option -mon: chardev 'c' is a stdio chardev; the monitor needs a socket chardev",
        "-chardev", "stdio,id=c", "-mon", "chardev=c,id=m")]
    [InlineData("option -mon: chardev 'c' needs both server and nowait",
        "-chardev", "socket,id=c,path=/s,server", "-mon", "chardev=c,id=m")]
    [InlineData("option -device: virtconsole chardev=c: that chardev is used by the -mon monitor",
        "-chardev", "socket,id=c,path=/s,server,nowait", "-mon", "chardev=c,id=m",
        "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c")]
    [InlineData("option -device: virtconsole chardev=t: TCP chardevs serve only -mon in this build; use path=",
        "-chardev", "socket,id=t,host=127.0.0.1,port=1,server,nowait",
        "-device", "virtio-serial-device", "-device", "virtconsole,chardev=t")]
    [InlineData("option -chardev: chardev 't': invalid host 'nowhere'", "-chardev", "socket,id=t,host=nowhere,port=1,server,nowait")]
    [InlineData("option -mon: unix:/s is the -qmp socket too",
        "-qmp", "unix:/s,server,nowait", "-chardev", "socket,id=c,path=/s,server,nowait", "-mon", "chardev=c,id=m")]
    public void BadMonitorsAreRefused(string message, params string[] args) => Assert.StartsWith(message, Error([.. Base, .. args]));
}
