using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Memory;

namespace StratoVirt.Tests.Unit;

/// <summary>-machine mem-share= and memory-backend=, -object memory-backend-*, -mem-path and -mem-prealloc: every
/// form, and every error as one line naming the problem.</summary>
[Trait("Level", "Unit")]
public sealed class MemoryBackendOptionTests
{
    private static MachineConfig Parse(string machine, params string[] more) =>
        Options.FromArgs(ArgParser.Parse(["-machine", machine, "-kernel", "/k", .. more], Options.Specs), 24UL << 30).Machine;

    private static string Error(string machine, params string[] more) =>
        Assert.Throws<UsageException>(() => Parse(machine, more)).Message;

    [Fact]
    public void ByDefaultRamIsPrivateAnonymousMemory()
    {
        var m = Parse("microvm");
        Assert.Same(RamBacking.Default, m.Ram);
        Assert.Equal(256UL << 20, m.MemorySize);
        Assert.Equal(RamBacking.Default, Parse("microvm,mem-share=off").Ram);
    }

    [Fact]
    public void MemShareOnIsASharedMemfd() =>
        Assert.Equal(new RamBacking { Kind = RamBackingKind.Memfd, Shared = true }, Parse("type=microvm,mem-share=on", "-m", "512").Ram);

    [Fact]
    public void MemPathIsAFileMappedPrivateUnlessMemShareIsOn()
    {
        Assert.Equal(new RamBacking { Kind = RamBackingKind.File, Path = "/dev/hugepages" },
            Parse("microvm", "-mem-path", "/dev/hugepages").Ram);
        Assert.Equal(new RamBacking { Kind = RamBackingKind.File, Path = "/dev/hugepages", Shared = true, Prealloc = true },
            Parse("microvm,mem-share=on", "-mem-path", "/dev/hugepages", "-mem-prealloc").Ram);
        Assert.Equal(RamBacking.Default with { Prealloc = true }, Parse("microvm", "-mem-prealloc").Ram);
    }

    [Theory]
    [InlineData("memory-backend-memfd,id=mem0,size=512M", RamBackingKind.Memfd, true, null)]
    [InlineData("memory-backend-memfd,id=mem0,size=512M,share=off", RamBackingKind.Memfd, false, null)]
    [InlineData("memory-backend-file,id=mem0,size=512M,mem-path=/dev/shm/vm", RamBackingKind.File, false, "/dev/shm/vm")]
    [InlineData("memory-backend-file,id=mem0,size=512M,mem-path=/hp,share=on", RamBackingKind.File, true, "/hp")]
    [InlineData("memory-backend-ram,id=mem0,size=512M", RamBackingKind.Anonymous, false, null)]
    [InlineData("memory-backend-ram,id=mem0,size=512M,share=on", RamBackingKind.Memfd, true, null)]
    [InlineData("type=memory-backend-memfd,id=mem0,size=512M,policy=default", RamBackingKind.Memfd, true, null)]
    public void ABoundBackendDefinesRamAndItsSize(string backend, RamBackingKind kind, bool shared, string? path)
    {
        var m = Parse("microvm,memory-backend=mem0", "-object", backend);
        Assert.Equal(512UL << 20, m.MemorySize);
        Assert.Equal((kind, shared, path, false), (m.Ram.Kind, m.Ram.Shared, m.Ram.Path, m.Ram.Prealloc));
    }

    [Fact]
    public void BackendPreallocAndDumpSettingsAreKept()
    {
        var ram = Parse("microvm,memory-backend=m", "-m", "1G",
            "-object", "memory-backend-memfd,id=m,size=1G,prealloc=on,dump-guest-core=off").Ram;
        Assert.Equal((true, false), (ram.Prealloc, ram.Dumpable));
        Assert.True(Parse("microvm,memory-backend=m", "-object", "memory-backend-memfd,id=m,size=1G,mem-prealloc=on").Ram.Prealloc);
        Assert.True(Parse("microvm,memory-backend=m", "-object", "memory-backend-memfd,id=m,size=1G", "-mem-prealloc").Ram.Prealloc);
    }

    [Fact]
    public void AnUnboundBackendIsAcceptedAndLeavesRamAlone() =>
        Assert.Same(RamBacking.Default, Parse("microvm", "-object", "memory-backend-memfd,id=spare,size=1G").Ram);

    [Theory]
    [InlineData("microvm,memory-backend=nope", new[] { "-object", "memory-backend-memfd,id=m,size=1G" },
        "option -machine: memory-backend=nope: no -object memory-backend-* with id 'nope'")]
    [InlineData("microvm,memory-backend=m", new[] { "-object", "memory-backend-memfd,id=m,size=1G", "-m", "512" },
        "option -m: 512 MiB does not match the 1024 MiB of memory-backend 'm' (leave -m out, or give the same size)")]
    [InlineData("microvm,memory-backend=m", new[] { "-object", "memory-backend-memfd,id=m,size=64M" },
        "option -object memory-backend-memfd 'm' size: memory size 64 MiB is below the minimum of 128 MiB")]
    [InlineData("microvm,mem-share=on,memory-backend=m", new[] { "-object", "memory-backend-file,id=m,size=1G,mem-path=/x" },
        "option -machine: mem-share=on, but memory-backend 'm' has share=off")]
    [InlineData("microvm,memory-backend=m", new[] { "-object", "memory-backend-memfd,id=m,size=1G", "-mem-path", "/x" },
        "option -mem-path: cannot be combined with -machine memory-backend=m (give the backend mem-path=)")]
    [InlineData("microvm,memory-backend=", new string[0], "option -machine: memory-backend= needs an id")]
    [InlineData("microvm,mem-share=maybe", new string[0], "option -machine: mem-share=maybe must be on or off")]
    [InlineData("microvm", new[] { "-mem-path", "" }, "option -mem-path: the path is empty")]
    public void BadBindingsNameTheProblem(string machine, string[] more, string expected) =>
        Assert.Equal(expected, Error(machine, more));

    [Theory]
    [InlineData("memory-backend-memfd,size=1G", "option -object: memory-backend-memfd needs id=")]
    [InlineData("memory-backend-memfd,id=m", "option -object: memory-backend-memfd 'm': size= is required")]
    [InlineData("memory-backend-memfd,id=m,size=lots", "option -object memory-backend-memfd size: 'lots' is not a size")]
    [InlineData("memory-backend-memfd,id=m,size=1Q", "option -object memory-backend-memfd size: '1Q' has an unknown unit")]
    [InlineData("memory-backend-file,id=m,size=1G", "option -object: memory-backend-file 'm': mem-path= is required")]
    [InlineData("memory-backend-memfd,id=m,size=1G,mem-path=/x", "option -object: memory-backend-memfd 'm': mem-path= belongs to memory-backend-file")]
    [InlineData("memory-backend-memfd,id=m,size=1G,share=sometimes", "option -object: share=sometimes must be on or off")]
    [InlineData("memory-backend-memfd,id=m,size=1G,host-nodes=0", "option -object: memory-backend-memfd 'm': host-nodes= and policy= (NUMA placement) are not supported by this build")]
    [InlineData("memory-backend-memfd,id=m,size=1G,policy=bind", "option -object: memory-backend-memfd 'm': host-nodes= and policy= (NUMA placement) are not supported by this build")]
    [InlineData("memory-backend-epc,id=m,size=1G", "option -object: unknown memory backend 'memory-backend-epc' (memory-backend-ram, -memfd or -file)")]
    [InlineData("memory-backend-memfd,id=m,size=1G,filename=/x", "option -object: unknown parameter 'filename'")]
    [InlineData("memory-backend-memfd,id=m,size=1G,size=2G", "option -object: parameter 'size' is given twice")]
    [InlineData("memory-backend-memfd,id=m,size=1G,oops", "option -object: 'oops' is not key=value")]
    public void MalformedBackendsNameTheProblem(string backend, string expected) =>
        Assert.StartsWith(expected, Error("microvm", "-object", backend));

    [Fact]
    public void BackendIdsAreUnique()
    {
        Assert.Equal("option -object: id 'm' is used twice",
            Error("microvm", "-object", "memory-backend-memfd,id=m,size=1G", "-object", "memory-backend-ram,id=m,size=1G"));
        Assert.Equal("option -object: id 'm' is used twice",
            Error("microvm", "-object", "iothread,id=m", "-object", "memory-backend-ram,id=m,size=1G"));
    }
}
