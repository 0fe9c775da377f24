namespace StratoVirt.Tests.Lab;

/// <summary>Debian's arm64 kernel on the aarch64 microVM under the Arm lab's KVM (see <see cref="ArmScenarios"/>):
/// what differs from x86_64, in the default test run (level ArmLab).</summary>
[Trait("Level", "ArmLab")]
public sealed class ArmLabTests
{
    internal static LabScenario Ended(string name) => ArmLabSession.Instance.Ended(name);

    [Fact]
    public void KernelReachesInitWithBothCpusAndItsMemoryUnderSeccompAndPowersOff() => AssertBooted("arm-boot-2cpu", 2);

    /// <summary>The guest booted with <paramref name="cpus"/> vCPUs, every thread of the VMM confined.</summary>
    internal static void AssertBooted(string name, int cpus)
    {
        var s = Ended(name);
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.NotNull(s.GuestUptimeAtInit);
        s.AssertMarker("GUEST-CPUS", cpus.ToString());
        Assert.True(s.OutputContains($"smp: Brought up 1 node, {cpus} CPU"), s.Text);
        long memKb = long.Parse(s.GuestMarker("GUEST-MEMTOTAL-KB")!);
        Assert.InRange(memKb, ArmScenarios.MemoryMiB * 1024L * 3 / 4, ArmScenarios.MemoryMiB * 1024L);
        s.AssertMarker("GUEST-ACTION", "poweroff");
        // The kernel found the machine from the device tree: GICv3, the PL011 console, the PL031 clock.
        Assert.True(s.OutputContains("GICv3"), s.Text);
        Assert.True(s.OutputContains("ttyAMA0 at MMIO 0x9000000"), s.Text);
        Assert.True(s.OutputContains("rtc-pl031"), s.Text);
        // main, the finalizer and each vCPU
        Assert.True(s.OutputContains($"seccomp: {cpus + 2} threads confined"), s.Text);
        // The PL011 console's writes to DR went through KVM's coalesced ring, its flag reads exiting.
        s.AssertSerialWritesQueued(5_000);
    }

    [Fact]
    public void ABlockedSystemCallIsNamedFromAarch64sTableAndStopsTheVm()
    {
        var s = Ended("arm-seccomp-blocked");
        Assert.True(s.ExitCode == 159, s.Text); // 128 + SIGSYS
        Assert.True(s.OutputContains("stratovirt: seccomp blocked system call uname (160); stopping the VM"), s.Text);
        Assert.True(s.OutputContains("seccomp: 4 threads confined"), s.Text);
    }

    /// <summary>The arm64 ozone: the VMM sandboxed as on x86_64 reads the disk passed in with -source.</summary>
    [Fact]
    public void OzoneRunsTheVmmConfinedAndTheGuestReadsItsSourcedDisk()
    {
        var s = Ended("arm-ozone");
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-BLK-SHA256", HostDiskSha256());
        Assert.True(s.OutputContains("seccomp: 3 threads confined"), s.Text);
        OzoneLabTests.AssertConfined(s, "oz-Image");
    }

    [Fact]
    public void QmpHotplugsADiskIntoAnEmptySlot()
    {
        var s = Ended("arm-hotplug");
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-HP-EMPTY-SECTORS", "0");
        Assert.False(s.OutputContains("\"error\""), s.Text);
        s.AssertMarker("GUEST-HP-SECTORS", (4 * 1024 * 1024 / 512).ToString());
        s.AssertMarker("GUEST-HP-SHA256", HostDiskSha256());
    }

    /// <summary>The lab disk's sha256 as the outer VM computed it.</summary>
    internal static string HostDiskSha256()
    {
        string? host = ArmLabSession.Instance.Log.Lines.Select(l => l.Trim())
            .FirstOrDefault(l => l.StartsWith("HOST-DISK-SHA256 ", StringComparison.Ordinal))?["HOST-DISK-SHA256 ".Length..];
        Assert.NotNull(host);
        Assert.Equal(64, host.Length);
        return host;
    }

    [Theory]
    [InlineData("arm-refuses-bzimage", "is an x86 bzImage, not an arm64 Image")]
    [InlineData("arm-refuses-old-image", "has image_size 0: an arm64 Image from before Linux 3.17")]
    public void BadInputIsOneLineAndExitOne(string name, string message)
    {
        var s = Ended(name);
        Assert.Equal(1, s.ExitCode);
        var lines = s.Output.Where(l => l.StartsWith("stratovirt: ", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 1 && lines[0].Contains(message, StringComparison.Ordinal), s.Text);
    }
}

/// <summary>The rest of the Arm lab: the virtio devices, QMP and a guest reboot as in the x86 lab, and one vCPU
/// (level ArmLabFull: <c>scripts/test.sh armlab</c>, which sets STRATOVIRT_ARM_LAB=full).</summary>
[Trait("Level", "ArmLabFull")]
public sealed class ArmLabFullTests
{
    private static LabScenario Ended(string name) => ArmLabTests.Ended(name);

    [Fact]
    public void KernelReachesInitWithOneCpuUnderSeccompAndPowersOff() => ArmLabTests.AssertBooted("arm-boot-1cpu", 1);

    [Fact]
    public void GuestRebootEndsTheVmWithExitZero()
    {
        var s = Ended("arm-reboot");
        s.AssertMarker("GUEST-ACTION", "reboot");
        Assert.True(s.ExitCode == 0, s.Text);
    }

    [Fact]
    public void VirtioBlockReadsTheWholeDisk()
    {
        var s = Ended("arm-blk");
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-BLK-SHA256", ArmLabTests.HostDiskSha256());
    }

    [Fact]
    public void VirtioConsoleCarriesTheGuestsWritesToItsChardev()
    {
        var s = Ended("arm-console");
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-HVC", "/dev/hvc0");
        s.AssertMarker("GUEST-HVC-WRITE", "ok");
        Assert.Contains("HOST-HVC0-FILE 1", ArmLabSession.Instance.Log.Lines.Select(l => l.Trim()));
    }

    [Fact]
    public void VirtioRngFeedsTheGuestsHwRandom()
    {
        var s = Ended("arm-rng");
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.StartsWith("virtio_rng", s.GuestMarker("GUEST-RNG-CURRENT"));
        s.AssertMarker("GUEST-RNG-BYTES", "256");
        Assert.True(int.Parse(s.GuestMarker("GUEST-RNG-DISTINCT")!) > 100, s.Text);
    }

    [Fact]
    public void VirtioNetCarriesPingAndSixteenMebibytesEachWayThroughATap()
    {
        var s = Ended("arm-net");
        Assert.True(s.ExitCode == 0, s.Text);
        VirtioLabTests.AssertNetWorked(s, "52:54:00:12:34:56");
    }

    [Fact]
    public void QmpAnswersAndSystemPowerdownEndsTheVm()
    {
        var s = Ended("arm-qmp");
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("HOST-QMP-CLIENT", "rc=0");
        Assert.True(s.OutputContains("\"status\": \"running\"") || s.OutputContains("\"status\":\"running\""), s.Text);
        Assert.True(s.OutputContains("\"CPU\": 1") || s.OutputContains("\"CPU\":1"), s.Text); // both vCPUs listed
        Assert.True(s.OutputContains("POWERDOWN") && s.OutputContains("SHUTDOWN"), s.Text);
        s.AssertMarker("HOST-VMM-EXIT", "0");
    }
}
