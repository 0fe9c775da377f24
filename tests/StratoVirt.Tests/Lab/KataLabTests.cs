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

    private static string Text(LabScenario s) => string.Join('\n', s.Output);

    private static void Marker(LabScenario s, string marker, string expected) =>
        Assert.True(s.GuestMarker(marker) == expected, $"{marker}: expected '{expected}', got '{s.GuestMarker(marker)}'\n{Text(s)}");

    [GeneratedRegex(@"^0 thread_id=(\d+) vmm-thread$")]
    private static partial Regex CpuLine();

    [Fact]
    public void KatasArgvBootsAndGovmmConnectsQueriesCpusAndKills()
    {
        var s = Scenario();
        Assert.StartsWith("ok attempts=", s.GuestMarker("KATA-CONNECT") ?? "", StringComparison.Ordinal);
        // govmm's QMPStart refuses anything below QEMU 5; upstream reports 5.0.1 with no capabilities.
        Marker(s, "KATA-QMP-VERSION", "5.0.1 capabilities=[]");
        Marker(s, "KATA-CAPABILITIES", "ok");
        Marker(s, "KATA-CONSOLE", "connected");
        Marker(s, "KATA-SETUP", "ok");
        Marker(s, "KATA-CPUS", "1");
        Assert.Matches(CpuLine(), s.GuestMarker("KATA-CPU") ?? "");
        // The guest ran on Kata's hvc0-only console with Kata's kernel parameters.
        Marker(s, "GUEST-KATA-HVC0", "ok");
        Assert.Contains("ramdom.trust_cpu=on pci=off iommu=off debug console=hvc0", s.GuestMarker("GUEST-KATA-CMDLINE") ?? "");
        Assert.Contains("GUEST-KATA-CMDLINE ", s.GuestMarker("KATA-GUEST-READY") ?? "");
        // Kata stops the VM with SIGKILL: the process is gone, QMP disconnects, the image is untouched.
        Marker(s, "KATA-KILL", "ok");
        Marker(s, "KATA-QMP-DISCONNECTED", "ok");
        Marker(s, "HOST-KATA-VMM-RC", "137");
        Marker(s, "HOST-KATA-VMM-PROCESS", "gone");
        Marker(s, "HOST-KATA-DISK", "unchanged");
    }

    [Fact]
    public void GovmmHotplugsAndUnplugsADiskTheWayKataDoes()
    {
        var s = Scenario();
        Marker(s, "KATA-BLOCKDEV-ADD", "ok node-name=drive-kata0");
        Marker(s, "KATA-DEVICE-ADD", "ok slot=0");
        Marker(s, "GUEST-KATA-VDA-SECTORS", (4 * 1024 * 1024 / 512).ToString());
        Marker(s, "GUEST-KATA-VDA-HEAD", KataScenarios.DiskHead);
        Assert.EndsWith($"GUEST-KATA-VDA-HEAD {KataScenarios.DiskHead}", s.GuestMarker("KATA-GUEST-PLUGGED") ?? "");
        // govmm's ExecuteDeviceDel returns only once DEVICE_DELETED for the device has arrived.
        Marker(s, "KATA-DEVICE-DEL", "ok DEVICE_DELETED device=drive-kata0");
        Assert.Contains(s.Output, l => l.StartsWith("KATA-EVENT DEVICE_DELETED ", StringComparison.Ordinal) && l.Contains("device:drive-kata0"));
        Marker(s, "GUEST-KATA-VDA-GONE", "sectors=0");
        Assert.EndsWith("GUEST-KATA-VDA-GONE sectors=0", s.GuestMarker("KATA-GUEST-UNPLUGGED") ?? "");
        Marker(s, "HOST-KATA-CLIENT-RC", "0");
    }
}
