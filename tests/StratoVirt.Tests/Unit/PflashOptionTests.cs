using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Virtio.Devices.Block;
using Xunit;

namespace StratoVirt.Tests.Unit;

/// <summary>-drive if=pflash (OVMF's code and variables) and bootindex= on the q35 machine.</summary>
[Trait("Level", "Unit")]
public sealed class PflashOptionTests
{
    private const string Code = "file=/ovmf/OVMF_CODE.fd,if=pflash,unit=0,readonly=true";
    private const string Vars = "file=/ovmf/OVMF_VARS.fd,if=pflash,unit=1";

    private static MachineConfig Parse(params string[] args) =>
        Options.FromArgs(ArgParser.Parse(args, Options.Specs), 24UL << 30).Machine;

    private static string Error(params string[] args) => Assert.Throws<UsageException>(() => Parse(args)).Message;

    [Fact]
    public void UpstreamsUefiCommandLineNeedsNoKernel()
    {
        var m = Parse("-machine", "q35", "-m", "2G", "-drive", Code, "-drive", Vars,
            "-drive", "id=d0,file=/disk.img", "-device", "virtio-blk-pci,drive=d0,id=blk0,bus=pcie.0,addr=0x3,bootindex=1");
        Assert.Null(m.KernelPath);
        Assert.Equal([new PflashDrive(0, "/ovmf/OVMF_CODE.fd", true), new PflashDrive(1, "/ovmf/OVMF_VARS.fd", false)], m.Pflash);
        var blk = Assert.IsType<BlockDeviceConfig>(Assert.Single(m.Devices));
        Assert.Equal(1, blk.BootIndex);
        Assert.Equal("/disk.img", blk.Path);
    }

    [Fact]
    public void AKernelWithFirmwareIsKeptForFwCfg()
    {
        var m = Parse("-machine", "q35", "-kernel", "/k", "-append", "console=ttyS0", "-drive", Vars, "-drive", Code);
        Assert.Equal("/k", m.KernelPath);
        Assert.Equal([0, 1], m.Pflash.Select(d => d.Unit));
    }

    [Fact]
    public void UnitsDefaultToTheirOrder()
    {
        var m = Parse("-machine", "q35", "-drive", "file=/c.fd,if=pflash,readonly=on", "-drive", "file=/v.fd,if=pflash");
        Assert.Equal([new PflashDrive(0, "/c.fd", true), new PflashDrive(1, "/v.fd", false)], m.Pflash);
    }

    [Fact]
    public void BadFlashOptionsAreOneLineErrors()
    {
        Assert.Contains("pflash unit 0 (/c.fd) holds the firmware code and must be readonly=true",
            Error("-machine", "q35", "-drive", "file=/c.fd,if=pflash,unit=0"));
        Assert.Contains("pflash unit 1 (the variables) needs unit 0", Error("-machine", "q35", "-drive", Vars));
        Assert.Contains("pflash unit 0 is given twice", Error("-machine", "q35", "-drive", Code, "-drive", Code));
        Assert.Contains("unit=2 is out of range 0-1", Error("-machine", "q35", "-drive", "file=/x,if=pflash,unit=2"));
        Assert.Contains("at most two pflash drives", Error("-machine", "q35", "-drive", Code, "-drive", Vars, "-drive", "file=/x,if=pflash"));
        Assert.Contains("needs file=", Error("-machine", "q35", "-drive", "if=pflash,unit=0,readonly=true"));
        Assert.Contains("format=qcow2 is not supported", Error("-machine", "q35", "-drive", Code + ",format=qcow2"));
        Assert.Contains("if=pflash needs the standard VM", Error("-machine", "microvm", "-kernel", "/k", "-drive", Code));
        Assert.Contains("-kernel is required without firmware", Error("-machine", "q35"));
    }

    [Fact]
    public void ABootindexIsTakenOnce()
    {
        Assert.Contains("bootindex=1 is used by 'blk0' too", Error("-machine", "q35", "-drive", Code,
            "-drive", "id=d0,file=/a", "-device", "virtio-blk-pci,drive=d0,id=blk0,bootindex=1",
            "-drive", "id=d1,file=/b", "-device", "virtio-blk-pci,drive=d1,id=blk1,bootindex=1"));
        Assert.Contains("bootindex=x is not a number", Error("-machine", "q35", "-drive", Code,
            "-drive", "id=d0,file=/a", "-device", "virtio-blk-pci,drive=d0,id=blk0,bootindex=x"));
    }
}
