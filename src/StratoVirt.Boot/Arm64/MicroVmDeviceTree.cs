using StratoVirt.Boot.DeviceTree;

namespace StratoVirt.Boot.Arm64;

/// <summary>What the aarch64 microVM's device tree describes: RAM, vCPUs, kernel command line and how many
/// virtio-mmio slots exist (slot n at <see cref="ArmLayout.VirtioMmioSlot"/>, SPI
/// <see cref="ArmLayout.VirtioMmioFirstSpi"/> + n).</summary>
public sealed record ArmMachineDescription(ulong RamSize, int Cpus, string CommandLine, int VirtioSlots);

/// <summary>
/// The device tree the aarch64 microVM hands its kernel (in x0): memory, the vCPUs started through PSCI, the
/// GICv3 with its maintenance interrupt, the architected timer, the PL011 console with its clock, the PL031
/// clock, the virtio-mmio slots, and chosen with the command line, console and initrd.
/// </summary>
public static class MicroVmDeviceTree
{
    // Third cell of an interrupt specifier (arm,gic-v3 binding): trigger type.
    private const uint EdgeRising = 1, LevelHigh = 4;
    // First cell: SPI or PPI.
    private const uint Spi = 0, Ppi = 1;
    private const uint ApbClockHz = 24_000_000;
    private const string UartNode = "pl011@9000000";

    /// <summary>The device tree blob for <paramref name="machine"/> booted as <paramref name="plan"/> says.</summary>
    public static byte[] Build(ArmMachineDescription machine, ArmBootPlan plan)
    {
        ArgumentNullException.ThrowIfNull(machine);
        if (machine.Cpus < 1 || machine.Cpus > ArmLayout.MaxCpus)
            throw new BootException($"the aarch64 microVM takes 1 to {ArmLayout.MaxCpus} vCPUs (its GICv3 redistributor space), not {machine.Cpus}");
        var fdt = new FdtWriter();
        uint gic = fdt.AllocatePhandle(), clock = fdt.AllocatePhandle();

        fdt.BeginNode("");
        fdt.PropertyString("compatible", "linux,dummy-virt");
        fdt.PropertyU32("#address-cells", 2);
        fdt.PropertyU32("#size-cells", 2);
        fdt.PropertyU32("interrupt-parent", gic);

        fdt.BeginNode("chosen");
        fdt.PropertyString("bootargs", machine.CommandLine);
        fdt.PropertyString("stdout-path", "/" + UartNode);
        if (plan.HasInitrd)
        {
            fdt.PropertyU64("linux,initrd-start", plan.InitrdStart);
            fdt.PropertyU64("linux,initrd-end", plan.InitrdEnd);
        }
        fdt.EndNode();

        fdt.BeginNode($"memory@{ArmLayout.RamBase:x}");
        fdt.PropertyString("device_type", "memory");
        Reg(fdt, ArmLayout.RamBase, machine.RamSize);
        fdt.EndNode();

        WriteCpus(fdt, machine.Cpus);

        fdt.BeginNode("psci");
        fdt.PropertyString("compatible", "arm,psci-0.2");
        fdt.PropertyString("method", "hvc");
        fdt.EndNode();

        fdt.BeginNode($"intc@{ArmLayout.GicDistributor:x}");
        fdt.PropertyString("compatible", "arm,gic-v3");
        fdt.PropertyU32("#interrupt-cells", 3);
        fdt.PropertyEmpty("interrupt-controller");
        // Address cells of an interrupt provider (dtc requires them; ITS children would use them with ranges).
        fdt.PropertyU32("#address-cells", 2);
        fdt.PropertyU32("#size-cells", 2);
        fdt.PropertyEmpty("ranges");
        ulong redistributors = (ulong)machine.Cpus * ArmLayout.GicRedistributorStride;
        fdt.PropertyCells("reg", Hi(ArmLayout.GicDistributor), Lo(ArmLayout.GicDistributor), 0, (uint)ArmLayout.GicDistributorSize,
            Hi(ArmLayout.GicRedistributor), Lo(ArmLayout.GicRedistributor), Hi(redistributors), Lo(redistributors));
        fdt.PropertyCells("interrupts", Ppi, ArmLayout.GicMaintenancePpi, LevelHigh);
        fdt.PropertyU32("phandle", gic);
        fdt.EndNode();

        fdt.BeginNode("timer");
        fdt.PropertyString("compatible", "arm,armv8-timer");
        fdt.PropertyCells("interrupts",
            Ppi, ArmLayout.TimerSecurePhysicalPpi, LevelHigh, Ppi, ArmLayout.TimerPhysicalPpi, LevelHigh,
            Ppi, ArmLayout.TimerVirtualPpi, LevelHigh, Ppi, ArmLayout.TimerHypervisorPpi, LevelHigh);
        fdt.PropertyEmpty("always-on");
        fdt.EndNode();

        fdt.BeginNode("apb-pclk");
        fdt.PropertyString("compatible", "fixed-clock");
        fdt.PropertyU32("#clock-cells", 0);
        fdt.PropertyU32("clock-frequency", ApbClockHz);
        fdt.PropertyString("clock-output-names", "clk24mhz");
        fdt.PropertyU32("phandle", clock);
        fdt.EndNode();

        fdt.BeginNode(UartNode);
        fdt.PropertyStringList("compatible", "arm,pl011", "arm,primecell");
        Reg(fdt, ArmLayout.Pl011, ArmLayout.PrimeCellSize);
        fdt.PropertyCells("interrupts", Spi, ArmLayout.Pl011Spi, LevelHigh);
        fdt.PropertyStringList("clock-names", "uartclk", "apb_pclk");
        fdt.PropertyCells("clocks", clock, clock);
        fdt.EndNode();

        fdt.BeginNode($"pl031@{ArmLayout.Pl031:x}");
        fdt.PropertyStringList("compatible", "arm,pl031", "arm,primecell");
        Reg(fdt, ArmLayout.Pl031, ArmLayout.PrimeCellSize);
        fdt.PropertyCells("interrupts", Spi, ArmLayout.Pl031Spi, LevelHigh);
        fdt.PropertyString("clock-names", "apb_pclk");
        fdt.PropertyU32("clocks", clock);
        fdt.EndNode();

        for (int slot = 0; slot < machine.VirtioSlots; slot++)
        {
            ulong address = ArmLayout.VirtioMmioSlot(slot);
            fdt.BeginNode($"virtio_mmio@{address:x}");
            fdt.PropertyString("compatible", "virtio,mmio");
            Reg(fdt, address, ArmLayout.VirtioMmioSize);
            fdt.PropertyCells("interrupts", Spi, ArmLayout.VirtioMmioFirstSpi + (uint)slot, EdgeRising);
            fdt.PropertyEmpty("dma-coherent");
            fdt.EndNode();
        }

        fdt.EndNode();
        return fdt.Finish();
    }

    /// <summary>The affinity KVM gives vCPU <paramref name="index"/> in MPIDR_EL1 by default (16 per cluster in
    /// Aff0, then Aff1, then Aff2): the <c>reg</c> of its cpu node.</summary>
    public static uint CpuAffinity(int index) =>
        (uint)(index & 0xF) | (uint)((index >> 4) & 0xFF) << 8 | (uint)((index >> 12) & 0xFF) << 16;

    private static void WriteCpus(FdtWriter fdt, int cpus)
    {
        fdt.BeginNode("cpus");
        fdt.PropertyU32("#address-cells", 1);
        fdt.PropertyU32("#size-cells", 0);
        for (int i = 0; i < cpus; i++)
        {
            uint affinity = CpuAffinity(i);
            fdt.BeginNode($"cpu@{affinity:x}");
            fdt.PropertyString("device_type", "cpu");
            fdt.PropertyString("compatible", "arm,arm-v8");
            fdt.PropertyString("enable-method", "psci");
            fdt.PropertyU32("reg", affinity);
            fdt.EndNode();
        }
        fdt.EndNode();
    }

    /// <summary>A <c>reg</c> of one address and size, two cells each (the root's #address-cells and #size-cells).</summary>
    private static void Reg(FdtWriter fdt, ulong address, ulong size) =>
        fdt.PropertyCells("reg", Hi(address), Lo(address), Hi(size), Lo(size));

    private static uint Hi(ulong value) => (uint)(value >> 32);

    private static uint Lo(ulong value) => (uint)value;
}
