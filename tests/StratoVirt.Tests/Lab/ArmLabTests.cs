namespace StratoVirt.Tests.Lab;

/// <summary>Debian's arm64 kernel on the aarch64 microVM under the Arm lab's KVM (see <see cref="ArmScenarios"/>).
/// Level ArmLab: not part of the default lab run.</summary>
[Trait("Level", "ArmLab")]
public sealed class ArmLabTests
{
    private static LabScenario Ended(string name) => ArmLabSession.Instance.Ended(name);

    [Theory]
    [InlineData("arm-boot-1cpu", 1)]
    [InlineData("arm-boot-2cpu", 2)]
    public void KernelReachesInitWithItsCpusAndMemoryAndPowersOff(string name, int cpus)
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
    }

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
        string? host = ArmLabSession.Instance.Log.Lines.Select(l => l.Trim())
            .FirstOrDefault(l => l.StartsWith("HOST-DISK-SHA256 ", StringComparison.Ordinal))?["HOST-DISK-SHA256 ".Length..];
        Assert.NotNull(host);
        Assert.Equal(64, host.Length);
        s.AssertMarker("GUEST-BLK-SHA256", host);
    }
}
