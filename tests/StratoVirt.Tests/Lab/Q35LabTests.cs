using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Debian's cloud kernel on the q35 standard VM under the lab's KVM (see <see cref="Q35Scenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed class Q35LabTests(ITestOutputHelper output)
{
    private LabScenario Boot()
    {
        var s = LabSession.Instance.Ended("q35-boot", output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-TEST-END", "q35 rc=0");
        return s;
    }

    [Fact]
    public void KernelReachesInitWithItsCpusAndMemory()
    {
        var s = Boot();
        Assert.NotNull(s.GuestUptimeAtInit);
        s.AssertMarker("GUEST-CPUS", Q35Scenarios.Cpus.ToString());
        s.AssertMarker("GUEST-Q35-CPUS-ONLINE", $"0-{Q35Scenarios.Cpus - 1}");
        Assert.True(s.OutputContains($"smp: Brought up 1 node, {Q35Scenarios.Cpus} CPUs"), s.Text);
        long memKb = long.Parse(s.GuestMarker("GUEST-MEMTOTAL-KB")!);
        Assert.InRange(memKb, Q35Scenarios.MemoryMiB * 1024L * 3 / 4, Q35Scenarios.MemoryMiB * 1024L);
    }

    /// <summary>Root on virtio-blk-pci (queues on an iothread) with one vCPU: the microVM's blk test.</summary>
    [Fact]
    public void RootOnVirtioBlkPciKeepsSixtyFourMebibytesAndAReadOnlyFunctionRefusesWrites()
    {
        var s = LabSession.Instance.Ended("q35-blk-root", output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-CPUS", Q35Scenarios.BlkRootCpus.ToString());
        VirtioLabTests.AssertBlkRootWorked(s);
    }

    /// <summary>virtio-net-pci with four vCPUs: ping and 16 MiB each way through a tap, the microVM's net test.</summary>
    [Fact]
    public void VirtioNetPciCarriesSixteenMebibytesEachWayWithFourCpus()
    {
        var s = LabSession.Instance.Ended("q35-net", output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-CPUS", Q35Scenarios.NetCpus.ToString());
        Assert.True(s.OutputContains($"smp: Brought up 1 node, {Q35Scenarios.NetCpus} CPUs"), s.Text);
        VirtioLabTests.AssertNetWorked(s, "52:54:00:12:34:58");
    }

    [Fact]
    public void GuestFindsTheQ35AcpiTablesAndUsesTheFixedHardware()
    {
        var s = Boot();
        var tables = s.GuestMarker("GUEST-Q35-ACPI-TABLES")!.Split(' ');
        foreach (string table in new[] { "DSDT", "FACP", "FACS", "APIC", "MCFG" })
            Assert.True(tables.Contains(table), $"{table} missing from '{string.Join(' ', tables)}'\n{s.Text}");
        // The SCI is installed on the IOAPIC (a hardware-reduced platform has none), and the PM timer is a clocksource.
        Assert.Contains("IO-APIC 9-fasteoi acpi", s.GuestMarker("GUEST-Q35-SCI"));
        Assert.Contains("acpi_pm", s.GuestMarker("GUEST-Q35-CLOCKSOURCES")!.Split(' '));
        // ECAM is declared for the buses in use only (no root ports here: bus 0, its first MiB), which spares the
        // guest's probe of buses 1-255 for peer host bridges.
        Assert.True(s.OutputContains("PCI: MMCONFIG for domain 0000 [bus 00-00] at [mem 0xb0000000-0xb00fffff]"), s.Text);
        Assert.True(s.OutputContains("PCI: MMCONFIG at [mem 0xb0000000-0xb00fffff] reserved in E820"), s.Text);
    }

    [Fact]
    public void GuestSeesTheMchAndTheLpcBridgeOnPcie0()
    {
        var s = Boot();
        var functions = s.Output.Where(l => l.StartsWith("GUEST-Q35-PCI ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["GUEST-Q35-PCI 0000:00:00.0 0x8086:0x29c0 class=0x060000",
            $"GUEST-Q35-PCI {Q35Scenarios.BootCountAddress} 0x1af4:0x1042 class=0x010000", // the boot-count disk
            "GUEST-Q35-PCI 0000:00:1f.0 0x8086:0x2918 class=0x060100"], functions);
        Assert.True(s.OutputContains("quirk: [io  0x0600-0x067f] claimed by ICH6 ACPI/GPIO/TCO"), s.Text);
    }

    [Fact]
    public void GuestClockComesFromTheCmosRtc()
    {
        var s = Boot();
        string rtc = s.GuestMarker("GUEST-Q35-RTC")!;
        Assert.StartsWith("rtc_cmos ", rtc);
        long since = long.Parse(rtc[(rtc.IndexOf("since_epoch=", StringComparison.Ordinal) + "since_epoch=".Length)..]);
        LabSession.Instance.AssertDuringSession(since);
        Assert.Matches(@"^\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}", s.GuestMarker("GUEST-Q35-HWCLOCK"));
    }

    [Fact]
    public void PoweroffEndsTheVmThroughPm1WithExitZero()
    {
        var s = Boot();
        Assert.True(s.OutputContains("ACPI: PM: Preparing to enter system sleep state S5"), s.Text);
        Assert.True(s.OutputContains("guest powered off (ACPI S5)"), s.Text);
    }

    private static List<string> Lines(LabScenario s, string prefix) =>
        s.Output.Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l[prefix.Length..]).ToList();

    [Fact]
    public void TheGuestsRebootAndSystemResetBootTheSameVmAgain()
    {
        var s = Boot();
        // Three boots of one process, counted on the disk: each boot read the count the one before wrote.
        Assert.Equal(["1", "2", "3"], Lines(s, "GUEST-Q35-BOOT "));
        Assert.Equal(3, s.Output.Count(l => l.Contains("Linux version ", StringComparison.Ordinal)));
        s.AssertMarker("HOST-Q35-BOOTS", "3");
        Assert.True(s.OutputContains("reboot: Restarting system"), s.Text);
        // The guest's reboot through the FADT reset register (0xCF9), then the host's system_reset.
        Assert.True(s.OutputContains("guest requested a reset (ICH9 reset control): the VM resets"), s.Text);
        Assert.True(s.OutputContains("QMP system_reset: the VM resets"), s.Text);
        s.AssertMarker("HOST-Q35-QMP1", "rc=0");
        s.AssertMarker("HOST-Q35-QMP2", "rc=0");
        var first = string.Join('\n', Lines(s, "HOST-QMP1 "));
        Assert.Matches("\"event\": ?\"RESET\".*\"guest\": ?true.*\"reason\": ?\"guest-reset\"", first);
        var second = string.Join('\n', Lines(s, "HOST-QMP2 "));
        Assert.Matches("\"event\": ?\"RESET\".*\"guest\": ?false.*\"reason\": ?\"host-qmp-system-reset\"", second);
        // The disk behind virtio-blk-pci was reset with the machine and probed again by every boot.
        Assert.Equal(3, s.Output.Count(l => l.Contains("virtio_blk virtio0: [vda]", StringComparison.Ordinal)));
    }

    [Fact]
    public void SystemPowerdownPressesThePowerButtonAndTheGuestPowersOff()
    {
        var s = Boot();
        Assert.Matches(@"^/dev/input/event\d+$", s.GuestMarker("GUEST-Q35-AWAIT-POWERDOWN"));
        s.AssertMarker("GUEST-Q35-POWER-BUTTON", "24"); // one input_event: KEY_POWER
        Assert.Contains("IO-APIC 9-fasteoi acpi", s.GuestMarker("GUEST-Q35-SCI-AFTER"));
        s.AssertMarker("HOST-Q35-QMP3", "rc=0");
        var third = string.Join('\n', Lines(s, "HOST-QMP3 "));
        Assert.Matches("\"event\": ?\"POWERDOWN\"", third);
        Assert.Matches("\"event\": ?\"SHUTDOWN\".*\"guest\": ?true.*\"reason\": ?\"guest-shutdown\"", third);
        s.AssertMarker("HOST-VMM-EXIT", "0");
    }

    /// <summary>A q35-virtio scenario (see <see cref="Q35Scenarios.Virtio"/>): its three functions bound by virtio-pci,
    /// and the devices' checks.</summary>
    internal static LabScenario Virtio(string name, ITestOutputHelper output)
    {
        var s = LabSession.Instance.Ended(name, output);
        var functions = s.Output.Where(l => l.StartsWith("GUEST-Q35V-PCI ", StringComparison.Ordinal))
            .Select(l => string.Join(' ', l.Split(' ')[1..4])).ToList();
        // Non-transitional ids 0x1040 + type, each bound by virtio-pci.
        Assert.Equal([$"{Q35Scenarios.BlkAddress} 0x1042 driver=virtio-pci", $"{Q35Scenarios.NetAddress} 0x1041 driver=virtio-pci",
            $"{Q35Scenarios.RngAddress} 0x1044 driver=virtio-pci"], functions);
        AssertVirtioDevicesWorked(s);
        return s;
    }

    /// <summary>What /tests/q35-virtio.sh checks on any transport: the disk's known head, a MiB written and read back
    /// (and found on the host's image), a ping of the host, 256 bytes from the rng; the VM then powered off with exit 0.</summary>
    internal static void AssertVirtioDevicesWorked(LabScenario s)
    {
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-TEST-END", "q35-virtio rc=0");
        s.AssertMarker("GUEST-Q35V-BLK-HEAD", "STRATOVIRT-PCI-DIS");
        string wrote = s.GuestMarker("GUEST-Q35V-BLK-WROTE")!;
        Assert.Matches("^[0-9a-f]{64}$", wrote);
        s.AssertMarker("GUEST-Q35V-BLK-READ", wrote);
        s.AssertMarker("HOST-Q35V-DISK", wrote);
        s.AssertMarker("GUEST-Q35V-PING", "ok");
        s.AssertMarker("GUEST-Q35V-RNG", "virtio_rng.0 256");
    }

    internal static List<string> InterruptLines(LabScenario s) =>
        s.Output.Where(l => l.StartsWith("GUEST-Q35V-IRQ ", StringComparison.Ordinal)).ToList();

    /// <summary>Each of the three functions (virtio0-2, in slot order) has its configuration vector and queue vectors
    /// as MSI-X (the driver names per-queue vectors only then), and none fell back to an IOAPIC line.</summary>
    internal static void AssertEachFunctionUsesMsix(LabScenario s)
    {
        var lines = InterruptLines(s);
        Assert.All(lines, l => Assert.Contains("PCI-MSI", l));
        for (int i = 0; i < 3; i++)
        {
            Assert.Contains(lines, l => l.EndsWith($" virtio{i}-config", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Contains($" virtio{i}-", StringComparison.Ordinal) && !l.EndsWith("-config", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void VirtioPciDevicesWorkWithMsix()
    {
        var s = Virtio("q35-virtio-msix", output);
        var lines = InterruptLines(s);
        // A vector per queue and one for the configuration: virtio0-config, virtio0-req.0, virtio1-input.0, ...
        Assert.True(lines.Count >= 6, s.Text);
        AssertEachFunctionUsesMsix(s);
        Assert.Contains(lines, l => l.Contains("-input.0", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("-req.0", StringComparison.Ordinal));
    }

    [Fact]
    public void VirtioPciDevicesWorkWithIntxUnderPciNomsi()
    {
        var s = Virtio("q35-virtio-intx", output);
        var lines = InterruptLines(s);
        // INTA# of slot 3 on GSI 19, of slot 4 on GSI 16, shared by both its functions: the _PRT's routing.
        Assert.Equal(2, lines.Count);
        Assert.All(lines, l => Assert.Contains("IO-APIC", l));
        Assert.Single(lines, l => l.Contains(" 19-fasteoi virtio", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains(" 16-fasteoi virtio", StringComparison.Ordinal) && l.Contains(", virtio", StringComparison.Ordinal));
    }

    [Fact]
    public void VhostUserFsAndVhostVsockWorkOnPciWithMsix()
    {
        var s = LabSession.Instance.Ended("q35-vhost", output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-TEST-END", "q35-vhost rc=0");
        var functions = s.Output.Where(l => l.StartsWith("GUEST-Q35VH-PCI ", StringComparison.Ordinal)).Select(l => l[16..]).ToList();
        // virtio-fs is type 26 (0x105a), vsock type 19 (0x1053), both bound by virtio-pci.
        Assert.Equal(["0000:00:05.0 0x105a driver=virtio-pci", "0000:00:06.0 0x1053 driver=virtio-pci"], functions);
        s.AssertMarker("GUEST-FS-MOUNT", "ok");
        s.AssertMarker("GUEST-FS-FROM-HOST", "written-by-the-host");
        s.AssertMarker("GUEST-FS-HOST-BIN", s.GuestMarker("HOST-FS-HOST-BIN")!);
        s.AssertMarker("HOST-FS-GUEST-TEXT", "written-by-the-guest");
        s.AssertMarker("HOST-FS-GUEST-BIN", s.GuestMarker("GUEST-FS-WROTE")!);
        s.AssertMarker("GUEST-Q35VH-VSOCK", "1");
        var irqs = s.Output.Where(l => l.StartsWith("GUEST-Q35VH-IRQ ", StringComparison.Ordinal)).ToList();
        Assert.True(irqs.Count >= 4, s.Text); // fs: config, hiprio, request; vsock: config and its queues
        Assert.All(irqs, l => Assert.Contains("PCI-MSI", l));
    }

    [Fact]
    public void RootPortsTakeColdAndHotPluggedDevicesAndReleaseThemWithDeviceDeleted()
    {
        var s = Hotplug("q35-hotplug");
        // Without fast unplug the guest waits out its attention-button delay, then releases the card.
        Assert.True(s.OutputContains("pciehp: Slot(2): Powering off due to button press"), s.Text);
        Assert.False(s.OutputContains("pciehp: Slot(2): Card not present"), s.Text);
    }

    [Fact]
    public void FastUnplugLetsTheGuestPowerTheSlotOffWithoutItsButtonDelay()
    {
        var s = Hotplug("q35-hotplug-fast");
        // The presence change that comes with the button makes pciehp cancel its 5 s wait and remove the card.
        Assert.True(s.OutputContains("pciehp: Slot(2): Card not present"), s.Text);
    }

    /// <summary>vhost-user-blk-pci on qemu-storage-daemon plugged into an empty root port over QMP (chardev-add,
    /// device_add), written and read by the guest, unplugged (device_del with fast unplug, chardev-remove) and
    /// plugged again (see <see cref="Q35Scenarios"/>).</summary>
    [Fact]
    public void VhostUserBlkPciIsHotPluggedIntoARootPortUnpluggedAndPluggedAgain()
    {
        var s = VhostUserBlk("q35-vublk-hotplug");
        Assert.DoesNotContain(s.Output, l => l.StartsWith("HOST-Q35VUBLK-TIMEOUT", StringComparison.Ordinal));
        // A chardev nobody added: one error reply, and the VM goes on (the same id and port are taken next).
        var refused = Lines(s, "HOST-Q35VUBLK-ERR-CHARDEV ");
        Assert.True(refused.Count == 1, s.Text);
        Assert.Contains("\"error\":{\"class\":\"GenericError\"", refused[0]);
        Assert.Contains("not found for vhost user blk", refused[0]);
        s.AssertMarker("HOST-Q35VUBLK-CHARDEV-ADD", "{\"return\":{}}");
        s.AssertMarker("HOST-Q35VUBLK-PLUG", "{\"return\":{}}");
        Assert.Contains("Chardev vubc is in use by device 'vublk1'", s.GuestMarker("HOST-Q35VUBLK-ERR-IN-USE"));
        // The guest: the disk behind pcie.1 (bus 1).
        string written = AssertVhostUserBlkDiskWorked(s, "0000:01:00.0");
        // Unplug: the reply at once, DEVICE_DELETED once the guest powered the slot off; then the chardev goes.
        var unplug = Lines(s, "HOST-Q35VUBLK-UNPLUG ");
        Assert.True(unplug.Count == 2, s.Text);
        Assert.Equal("{\"return\":{}}", unplug[0]);
        Assert.Contains("\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":\"vublk1\",\"path\":\"/machine/peripheral/vublk1\"}", unplug[1]);
        Assert.True(s.OutputContains("pciehp: Slot(1): Card not present"), s.Text);
        s.AssertMarker("HOST-Q35VUBLK-CHARDEV-REMOVE", "{\"return\":{}}");
        Assert.Contains("\"status\":\"running\"", s.GuestMarker("HOST-Q35VUBLK-STATUS"));
        string after = s.GuestMarker("GUEST-Q35VUBLK-UNPLUGGED") ?? "";
        Assert.Contains("0000:00:02.0", after);
        Assert.DoesNotContain("0000:01:00.0", after);
        // Plugged again on a new connection to the daemon: the MiB the guest wrote is there.
        s.AssertMarker("HOST-Q35VUBLK-CHARDEV-READD", "{\"return\":{}}");
        s.AssertMarker("HOST-Q35VUBLK-REPLUG", "{\"return\":{}}");
        s.AssertMarker("GUEST-Q35VUBLK-REPLUGGED", "0000:01:00.0");
        s.AssertMarker("GUEST-Q35VUBLK-REREAD", written);
        // And in the image once the daemon ended.
        s.AssertMarker("HOST-Q35VUBLK-IMAGE-HEAD", Q35Scenarios.VhostUserBlkHead);
        s.AssertMarker("HOST-Q35VUBLK-IMAGE", written);
    }

    /// <summary>A scenario of /tests/q35-vublk.sh, which passed, with the VM's exit 0.</summary>
    private LabScenario VhostUserBlk(string name)
    {
        var s = LabSession.Instance.Ended(name, output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-TEST-END", "q35-vublk rc=0");
        return s;
    }

    /// <summary>What /tests/q35-vublk.sh checks of its disk: a virtio-blk function (0x1042) at <paramref name="function"/>
    /// bound by virtio-pci, with the image's size and head, its request queue on MSI-X; a MiB written reads back past
    /// the cache. Returns the MiB's hash.</summary>
    private static string AssertVhostUserBlkDiskWorked(LabScenario s, string function)
    {
        s.AssertMarker("GUEST-Q35VUBLK-PCI", $"{function} 0x1af4:0x1042 driver=virtio-pci");
        s.AssertMarker("GUEST-Q35VUBLK-SECTORS", (Q35Scenarios.VhostUserBlkImageMiB * 2048).ToString());
        s.AssertMarker("GUEST-Q35VUBLK-HEAD", Q35Scenarios.VhostUserBlkHead);
        s.AssertMarker("GUEST-Q35VUBLK-WRITE", "ok");
        string written = s.GuestMarker("GUEST-Q35VUBLK-WRITTEN") ?? "";
        Assert.Matches("^[0-9a-f]{64}$", written);
        s.AssertMarker("GUEST-Q35VUBLK-READ", written);
        var irqs = Lines(s, "GUEST-Q35VUBLK-IRQ ");
        Assert.Contains(irqs, l => l.Contains("PCI-MSI", StringComparison.Ordinal) && l.Contains("-req.0", StringComparison.Ordinal));
        return written;
    }

    /// <summary>vhost-user-blk-pci on qemu-storage-daemon given with -device at start-up, on pcie.0 (see
    /// <see cref="Q35Scenarios"/>): the guest's disk checks, then the MiB it wrote in the image once the VM exited 0.</summary>
    [Fact]
    public void ColdPluggedVhostUserBlkPciIsWrittenAndReadBackOnMsix()
    {
        var s = VhostUserBlk("q35-vublk-cold");
        Assert.DoesNotContain(s.Output, l => l.StartsWith("GUEST-Q35VUBLK-READY", StringComparison.Ordinal));
        string written = AssertVhostUserBlkDiskWorked(s, Q35Scenarios.VhostUserBlkColdAddress);
        s.AssertMarker("HOST-Q35VUBLK-IMAGE-HEAD", Q35Scenarios.VhostUserBlkHead);
        s.AssertMarker("HOST-Q35VUBLK-IMAGE", written);
    }

    /// <summary>vhost-net behind virtio-net-pci (see <see cref="Q35Scenarios"/>): the net test's ping and 16 MiB each
    /// way, the NIC's queues on MSI-X, and on the host a vhost worker named after a thread of the VMM that spent CPU
    /// time: the kernel moved the packets.</summary>
    [Fact]
    public void VhostNetPciCarriesSixteenMebibytesEachWayOnMsixThroughTheKernelsWorker()
    {
        var s = LabSession.Instance.Ended("q35-vhost-net", output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-TEST-END", "q35-vhost-net rc=0");
        VirtioLabTests.AssertNetWorked(s, "52:54:00:12:34:59");
        s.AssertMarker("GUEST-Q35VN-PCI", "0000:00:03.0 0x1af4:0x1041 driver=virtio-pci");
        var irqs = Lines(s, "GUEST-Q35VN-IRQ ");
        Assert.All(irqs, l => Assert.Contains("PCI-MSI", l));
        foreach (string vector in new[] { "-config", "-input.0", "-output.0" })
            Assert.Contains(irqs, l => l.EndsWith(vector, StringComparison.Ordinal));
        var worker = System.Text.RegularExpressions.Regex.Match(s.GuestMarker("HOST-VHOST-WORKERS") ?? "",
            @"^\(vhost-\d+\) pid=\d+ ticks=(\d+)");
        Assert.True(worker.Success, s.Text);
        Assert.True(long.Parse(worker.Groups[1].Value) > 0, s.Text);
    }

    private LabScenario Hotplug(string name)
    {
        var s = LabSession.Instance.Ended(name, output);
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-TEST-END", "q35-hotplug rc=0");
        Assert.DoesNotContain(s.Output, l => l.StartsWith("HOST-Q35HP-TIMEOUT", StringComparison.Ordinal));
        // The _OSC hands native hotplug to the guest; each root port is bound by pcieport and its slot by pciehp,
        // named by its port number.
        Assert.True(s.OutputContains("OS now controls [PCIeHotplug"), s.Text);
        var ports = s.Output.Where(l => l.StartsWith("GUEST-Q35HP-PORT ", StringComparison.Ordinal)).Select(l => l[17..]).ToList();
        Assert.Equal(["0000:00:02.0 0x1b36:0x000c driver=pcieport", "0000:00:02.1 0x1b36:0x000c driver=pcieport",
            "0000:00:03.0 0x1b36:0x000c driver=pcieport"], ports);
        s.AssertMarker("GUEST-Q35HP-SLOTS", "1 2 3");
        // Cold plug: behind pcie.1 on bus 1.
        s.AssertMarker("GUEST-Q35HP-COLD-PCI", "0000:01:00.0");
        s.AssertMarker("GUEST-Q35HP-COLD-HEAD", "STRATOVIRT-COLD-DISK");
        // Refusals, one line each.
        Assert.Contains("pcie.0 takes no hot-plugged devices", s.GuestMarker("HOST-Q35HP-ERR-ROOT"));
        Assert.Contains("no such bus 'pcie.9'", s.GuestMarker("HOST-Q35HP-ERR-BUS"));
        Assert.Contains("root port 'pcie.1' is occupied by 'blk0'", s.GuestMarker("HOST-Q35HP-ERR-OCCUPIED"));
        // Hotplug: the disk behind pcie.2 (bus 2), the NIC behind pcie.3 (bus 3), both working.
        s.AssertMarker("HOST-Q35HP-PLUG-BLK", "{\"return\":{}}");
        s.AssertMarker("HOST-Q35HP-PLUG-NET", "{\"return\":{}}");
        s.AssertMarker("GUEST-Q35HP-HOT-PCI", "0000:02:00.0");
        s.AssertMarker("GUEST-Q35HP-HOT-HEAD", "STRATOVIRT-HOT-DISK");
        s.AssertMarker("GUEST-Q35HP-NET-PCI", "0000:03:00.0");
        s.AssertMarker("GUEST-Q35HP-PING", "rc=0");
        var irqs = s.Output.Where(l => l.StartsWith("GUEST-Q35HP-IRQ ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, irqs.Count(l => l.Contains("pciehp", StringComparison.Ordinal) && l.Contains("PCI-MSI", StringComparison.Ordinal)));
        string pci = s.GuestMarker("HOST-Q35HP-QUERY-PCI")!;
        Assert.Contains("\"pci_bridge\":{\"bus\":{\"number\":0,\"secondary\":2,\"subordinate\":2,", pci);
        Assert.Contains("\"qdev_id\":\"blk1\"", pci);
        // Unplug: the reply at once, DEVICE_DELETED once the guest powered the slot off; the function is gone.
        var unplug = s.Output.Where(l => l.StartsWith("HOST-Q35HP-UNPLUG ", StringComparison.Ordinal)).ToList();
        Assert.True(unplug.Count == 2, s.Text);
        Assert.Equal("HOST-Q35HP-UNPLUG {\"return\":{}}", unplug[0]);
        Assert.Contains("\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":\"blk1\",\"path\":\"/machine/peripheral/blk1\"}", unplug[1]);
        s.AssertMarker("GUEST-Q35HP-UNPLUGGED", "gone");
        Assert.DoesNotContain("0000:02:00.0", s.GuestMarker("GUEST-Q35HP-AFTER"));
        return s;
    }
}
