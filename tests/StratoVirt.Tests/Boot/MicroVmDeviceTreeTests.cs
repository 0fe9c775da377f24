using StratoVirt.Boot;
using StratoVirt.Boot.Arm64;

namespace StratoVirt.Tests.Boot;

/// <summary>The aarch64 microVM's device tree: read back node by node, and decompiled by dtc
/// (device-tree-compiler), which must accept it without a warning.</summary>
[Trait("Level", "Unit")]
public sealed class MicroVmDeviceTreeTests : IDisposable
{
    private static readonly ArmMachineDescription Machine = new(256UL << 20, 2, "console=ttyAMA0 reboot=k panic=1", 3);
    private static readonly ArmBootPlan Plan = new(0x4020_0000, 0x4120_0000, 0x4F00_0000, 0x4F80_0123);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void NodesDescribeTheMachine()
    {
        var root = FdtReader.Parse(MicroVmDeviceTree.Build(Machine, Plan));
        Assert.Equal(["linux,dummy-virt"], root.Strings("compatible"));
        uint gic = root.Child("intc@8000000").Cells("phandle")[0];
        Assert.Equal([gic], root.Cells("interrupt-parent"));

        var chosen = root.Child("chosen");
        Assert.Equal(["console=ttyAMA0 reboot=k panic=1"], chosen.Strings("bootargs"));
        Assert.Equal(["/pl011@9000000"], chosen.Strings("stdout-path"));
        Assert.Equal([0u, 0x4F00_0000u], chosen.Cells("linux,initrd-start"));
        Assert.Equal([0u, 0x4F80_0123u], chosen.Cells("linux,initrd-end"));

        Assert.Equal([0u, 0x4000_0000u, 0u, 0x1000_0000u], root.Child("memory@40000000").Cells("reg"));
        var cpus = root.Child("cpus");
        Assert.Equal(["cpu@0", "cpu@1"], cpus.Children.Select(c => c.Name));
        Assert.All(cpus.Children, c => Assert.Equal(["psci"], c.Strings("enable-method")));
        Assert.Equal(["hvc"], root.Child("psci").Strings("method"));

        var intc = root.Child("intc@8000000");
        Assert.Equal([0u, 0x0800_0000u, 0u, 0x1_0000u, 0u, 0x080A_0000u, 0u, 0x4_0000u], intc.Cells("reg"));
        Assert.Equal([1u, 9u, 4u], intc.Cells("interrupts"));
        Assert.Equal([1u, 13u, 4u, 1u, 14u, 4u, 1u, 11u, 4u, 1u, 10u, 4u], root.Child("timer").Cells("interrupts"));

        uint clock = root.Child("apb-pclk").Cells("phandle")[0];
        var uart = root.Child("pl011@9000000");
        Assert.Equal(["arm,pl011", "arm,primecell"], uart.Strings("compatible"));
        Assert.Equal([0u, 0u, 4u], uart.Cells("interrupts"));
        Assert.Equal([clock, clock], uart.Cells("clocks"));
        Assert.Equal([0u, 1u, 4u], root.Child("pl031@9010000").Cells("interrupts"));

        Assert.Equal([0u, 4u, 1u], root.Child("virtio_mmio@a000400").Cells("interrupts"));
        Assert.Equal([0u, 0x0A00_0400u, 0u, 0x200u], root.Child("virtio_mmio@a000400").Cells("reg"));
        Assert.Equal(3, root.Children.Count(c => c.Name.StartsWith("virtio_mmio@", StringComparison.Ordinal)));
    }

    [Fact]
    public void WithoutAnInitrdChosenHasNoRange()
    {
        var chosen = FdtReader.Parse(MicroVmDeviceTree.Build(Machine, Plan with { InitrdStart = 0, InitrdEnd = 0 })).Child("chosen");
        Assert.False(chosen.Properties.ContainsKey("linux,initrd-start"));
    }

    [Fact]
    public void CpuNodesCarryKvmsAffinity()
    {
        Assert.Equal(0x0u, MicroVmDeviceTree.CpuAffinity(0));
        Assert.Equal(0xFu, MicroVmDeviceTree.CpuAffinity(15));
        Assert.Equal(0x100u, MicroVmDeviceTree.CpuAffinity(16));
        Assert.Equal(0x703u, MicroVmDeviceTree.CpuAffinity(0x73));
        var cpus = FdtReader.Parse(MicroVmDeviceTree.Build(Machine with { Cpus = 17 }, Plan)).Child("cpus");
        Assert.Equal([0x100u], cpus.Child("cpu@100").Cells("reg"));
    }

    [Fact]
    public void TooManyCpusAreRefused()
    {
        var e = Assert.Throws<BootException>(() => MicroVmDeviceTree.Build(Machine with { Cpus = 124 }, Plan));
        Assert.Equal("the aarch64 microVM takes 1 to 123 vCPUs (its GICv3 redistributor space), not 124", e.Message);
    }

    [Fact]
    public void DtcDecompilesItWithoutWarnings()
    {
        string blob = _dir.Write("microvm.dtb", MicroVmDeviceTree.Build(Machine, Plan));
        var (exitCode, dts, errors) = HostTool.Run("dtc", "device-tree-compiler", _dir.Path, "-I", "dtb", "-O", "dts", blob);
        Assert.True(exitCode == 0, $"dtc exited {exitCode}: {errors}");
        Assert.True(errors.Trim() == "", errors);
        Assert.Contains("compatible = \"arm,pl011\\0arm,primecell\";", dts);
        Assert.Contains("compatible = \"arm,gic-v3\";", dts);
        Assert.Contains("interrupt-controller;", dts);
        Assert.Contains("compatible = \"arm,psci-0.2\";", dts);
        Assert.Contains("bootargs = \"console=ttyAMA0 reboot=k panic=1\";", dts);
        Assert.Contains("virtio_mmio@a000000 {", dts);
        Assert.Contains("clock-names = \"uartclk\\0apb_pclk\";", dts);
    }
}
