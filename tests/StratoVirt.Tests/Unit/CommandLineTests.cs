using StratoVirt.Cli;
using StratoVirt.Machine;

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
        Assert.IsType<SerialBackend.Stdio>(o.Machine.Serial);
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
        Assert.Contains("not supported by this build", Error("-machine", "q35", "-kernel", "k"));
        Assert.Contains("unknown machine type 'pc'", Error("-machine", "pc", "-kernel", "k"));
        Assert.Contains("unknown parameter 'foo'", Error("-machine", "microvm,foo=1", "-kernel", "k"));
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
        Assert.Contains("not supported by this build yet", Error("-machine", "microvm", "-kernel", "k", "-mon", "chardev=c,id=m"));
        Assert.Contains("option -qmp", Error("-machine", "microvm", "-kernel", "k", "-qmp", "tcp:127.0.0.1:4444"));
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
        Assert.Equal("/tmp/s", Assert.IsType<SerialBackend.File>(Parse("-machine", "microvm", "-kernel", "k", "-serial", "file,path=/tmp/s").Machine.Serial).Path);
        Assert.Contains("unknown backend", Error("-machine", "microvm", "-kernel", "k", "-serial", "telnet"));
    }
}
