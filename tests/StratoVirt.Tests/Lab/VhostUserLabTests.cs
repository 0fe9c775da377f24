using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>vhost-user-fs with virtiofsd and vhost-user-blk with qemu-storage-daemon in the nested lab
/// (<see cref="VhostUserScenarios"/>), under seccomp.</summary>
[Trait("Level", "Lab")]
public sealed class VhostUserLabTests(ITestOutputHelper output)
{
    private LabScenario Run(string name, string test)
    {
        var s = LabSession.Instance.Ended(name, output);
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains($"GUEST-TEST-END {test} rc=0"), s.Text);
        return s;
    }

    [Fact]
    public void VirtioFsExchangesFilesWithTheHostThroughVirtiofsd()
    {
        var s = Run("vhost-user-fs", "virtiofs");
        s.AssertMarker("GUEST-FS-MOUNT", "ok");
        s.AssertMarker("GUEST-FS-FROM-HOST", "written-by-the-host");
        string hostBin = s.GuestMarker("HOST-FS-HOST-BIN") ?? "";
        Assert.Matches("^[0-9a-f]{64}$", hostBin);
        s.AssertMarker("GUEST-FS-HOST-BIN", hostBin);
        s.AssertMarker("HOST-FS-GUEST-TEXT", "written-by-the-guest");
        string guestBin = s.GuestMarker("GUEST-FS-WROTE") ?? "";
        Assert.Matches("^[0-9a-f]{64}$", guestBin);
        s.AssertMarker("HOST-FS-GUEST-BIN", guestBin);
        s.AssertMarker("GUEST-FS-UMOUNT", "ok");
    }

    [Fact]
    public void VhostUserBlkWritesAndRereadsSixtyFourMebibytesThroughQemuStorageDaemon()
    {
        var s = Run("vhost-user-blk", "vublk");
        s.AssertMarker("GUEST-VUBLK-SECTORS", (80 * 2048).ToString());
        s.AssertMarker("GUEST-VUBLK-WRITE", "ok");
        string written = s.GuestMarker("GUEST-VUBLK-WRITTEN") ?? "";
        Assert.Matches("^[0-9a-f]{64}$", written);
        s.AssertMarker("GUEST-VUBLK-REREAD", written);
        s.AssertMarker("HOST-VUBLK-IMAGE", written);
    }

    [Fact]
    public void AKilledVirtiofsdLeavesTheVmRunningAndIsReportedOnQmp()
    {
        var s = LabSession.Instance.Ended("vhost-user-fs-kill", output);
        s.AssertMarker("GUEST-FS-MOUNT", "ok");
        s.AssertMarker("GUEST-FS-HOLDING", "written-by-the-host");
        s.AssertMarker("HOST-FSKILL-WAITER-RC", "0");
        string evt = s.GuestMarker("HOST-FSKILL-EVENT") ?? "";
        Assert.Contains("\"event\":\"DEVICE_BACKEND_DISCONNECTED\"", evt);
        Assert.Contains("\"device\":\"fs0\",\"chardev\":\"vfs\",\"socket\":\"/tmp/vufs.sock\"", evt);
        s.AssertMarker("HOST-FSKILL-VMM", "running");
        Assert.Contains("\"status\":\"running\"", s.GuestMarker("HOST-FSKILL-STATUS") ?? "");
        s.AssertMarker("HOST-FSKILL-VMM-RC", "0");
        Assert.True(s.OutputContains("closed its socket"), s.Text);
        Assert.True(s.OutputContains("device stopped until the driver resets it"), s.Text);
    }

    [Fact]
    public void BadVhostUserInputIsOneLineAndLeavesNothing()
    {
        var s = LabSession.Instance.Ended("vhost-user-bad-input", output);
        s.AssertMarker("HOST-VUBAD-NOLISTEN", "rc=1 lines=1 left=");
        s.AssertMarker("HOST-VUBAD-NOLISTEN-MSG",
            "stratovirt: device 'fs0': vhost-user socket /tmp/vubad/none.sock: nobody listens on it (start the backend first)");
        s.AssertMarker("HOST-VUBAD-UNSHARED", "rc=1 lines=1 left=");
        Assert.StartsWith("stratovirt: device 'fs0': vhost-user-fs-device needs guest RAM shared with its backend",
            s.GuestMarker("HOST-VUBAD-UNSHARED-MSG") ?? "");
        // Refused before connecting: virtiofsd still waits for its frontend.
        s.AssertMarker("HOST-VUBAD-VIRTIOFSD", "still-waiting");
    }
}
