using System.Text.RegularExpressions;

namespace StratoVirt.Tests.Lab;

/// <summary>The kata scenario (<see cref="KataScenarios"/>): Kata Containers' command line and Kata's QMP client
/// library against our VMM in the nested lab.</summary>
[Trait("Level", "Lab")]
public sealed partial class KataLabTests
{
    private static LabScenario Scenario()
    {
        var s = LabSession.Instance.Log["kata"];
        Assert.True(s.Ended, $"kata did not finish (log: {LabSession.Instance.LogPath})");
        return s;
    }

    [GeneratedRegex(@"^0 thread_id=(\d+) vmm-thread$")]
    private static partial Regex CpuLine();

    [Fact]
    public void KatasArgvBootsAndGovmmConnectsQueriesCpusAndKills()
    {
        var s = Scenario();
        Assert.StartsWith("ok attempts=", s.GuestMarker("KATA-CONNECT") ?? "", StringComparison.Ordinal);
        // govmm's QMPStart refuses anything below QEMU 5; upstream reports 5.0.1 with no capabilities.
        s.AssertMarker("KATA-QMP-VERSION", "5.0.1 capabilities=[]");
        s.AssertMarker("KATA-CAPABILITIES", "ok");
        s.AssertMarker("KATA-CONSOLE", "connected");
        s.AssertMarker("KATA-SETUP", "ok");
        s.AssertMarker("KATA-CPUS", "1");
        Assert.Matches(CpuLine(), s.GuestMarker("KATA-CPU") ?? "");
        // The guest ran on Kata's hvc0-only console with Kata's kernel parameters.
        s.AssertMarker("GUEST-KATA-HVC0", "ok");
        Assert.Contains("ramdom.trust_cpu=on pci=off iommu=off debug console=hvc0", s.GuestMarker("GUEST-KATA-CMDLINE") ?? "");
        Assert.Contains("GUEST-KATA-CMDLINE ", s.GuestMarker("KATA-GUEST-READY") ?? "");
        // Kata stops the VM with SIGKILL: the process is gone, QMP disconnects, the image is untouched.
        s.AssertMarker("KATA-KILL", "ok");
        s.AssertMarker("KATA-QMP-DISCONNECTED", "ok");
        s.AssertMarker("HOST-KATA-VMM-RC", "137");
        s.AssertMarker("HOST-KATA-VMM-PROCESS", "gone");
        s.AssertMarker("HOST-KATA-DISK", "unchanged");
    }

    [Fact]
    public void GovmmHotplugsAndUnplugsADiskTheWayKataDoes()
    {
        var s = Scenario();
        s.AssertMarker("KATA-BLOCKDEV-ADD", "ok node-name=drive-kata0");
        s.AssertMarker("KATA-DEVICE-ADD", "ok slot=0");
        s.AssertMarker("GUEST-KATA-VDA-SECTORS", (4 * 1024 * 1024 / 512).ToString());
        s.AssertMarker("GUEST-KATA-VDA-HEAD", KataScenarios.DiskHead);
        Assert.EndsWith($"GUEST-KATA-VDA-HEAD {KataScenarios.DiskHead}", s.GuestMarker("KATA-GUEST-PLUGGED") ?? "");
        // govmm's ExecuteDeviceDel returns only once DEVICE_DELETED for the device has arrived.
        s.AssertMarker("KATA-DEVICE-DEL", "ok DEVICE_DELETED device=drive-kata0");
        Assert.Contains(s.Output, l => l.StartsWith("KATA-EVENT DEVICE_DELETED ", StringComparison.Ordinal) && l.Contains("device:drive-kata0"));
        s.AssertMarker("GUEST-KATA-VDA-GONE", "sectors=0");
        Assert.EndsWith("GUEST-KATA-VDA-GONE sectors=0", s.GuestMarker("KATA-GUEST-UNPLUGGED") ?? "");
        s.AssertMarker("HOST-KATA-CLIENT-RC", "0");
    }

    [Fact]
    public void KatasVirtioFsShareCarriesFilesBothWays()
    {
        var s = Scenario();
        s.AssertMarker("GUEST-KATA-FS-MOUNT", "ok");
        s.AssertMarker("GUEST-KATA-FS-READ", "from-the-kata-host");
        s.AssertMarker("GUEST-KATA-FS-WRITE", "ok");
        s.AssertMarker("HOST-KATA-FS-FROM-GUEST", "from-the-kata-guest");
    }
}
