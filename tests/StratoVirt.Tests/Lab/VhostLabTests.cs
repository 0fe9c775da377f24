using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>The host kernel's vhost-vsock and vhost-net serving the queues of Debian's guest drivers.</summary>
[Trait("Level", "Lab")]
public sealed class VhostLabTests(ITestOutputHelper output)
{
    private LabScenario Run(string name, string test)
    {
        var s = LabSession.Instance.Ended(name, output);
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains($"GUEST-TEST-END {test} rc=0"), s.Text);
        return s;
    }

    [Theory]
    [InlineData("vhost-vsock")]     // the VMM opens /dev/vhost-vsock
    [InlineData("vhost-vsock-fd")]  // the host script opens it and the VMM inherits it as vhostfd=5, as Kata passes it
    public void VsockEchoesBothWaysThroughTheKernelAndAgainAfterADeviceReset(string scenario)
    {
        var s = Run(scenario, "vhost-vsock");
        // Guest to host: 4 MiB to the host's AF_VSOCK echo server (CID 2, port 6000), echoed back intact.
        Assert.Equal(s.GuestMarker("GUEST-VSOCK-SENT"), s.GuestMarker("GUEST-VSOCK-ECHOED"));
        // Host to guest: 1 MiB to the guest's CID, port 5000.
        Assert.Equal(s.GuestMarker("HOST-VSOCK-SENT"), s.GuestMarker("HOST-VSOCK-ECHOED"));
        Assert.Equal("rc=0", s.GuestMarker("GUEST-VSOCK-SERVED"));
        // The driver rebound (the kernel's rings taken back and handed over again): a second host connection works.
        Assert.StartsWith("virtio", s.GuestMarker("GUEST-VSOCK-REBOUND"));
        Assert.Equal(s.GuestMarker("HOST-VSOCK-SENT-AFTER-REBIND"), s.GuestMarker("HOST-VSOCK-ECHOED-AFTER-REBIND"));
        Assert.Equal("rc=0", s.GuestMarker("GUEST-VSOCK-SERVED-AFTER-REBIND"));
    }

    [Fact]
    public void NetCarriesPingAndSixteenMebibytesEachWayThroughVhostNet() =>
        VirtioLabTests.AssertNetWorked(Run("vhost-net", "net"), "52:54:00:12:34:57");

    [Theory]
    [InlineData("VSOCK", "stratovirt: device 'vsock0': vhostfd 5 is not a vhost device (VHOST_GET_FEATURES: Inappropriate ioctl for device)")]
    [InlineData("NET", "stratovirt: device 'eth0': vhostfd 6 is not a vhost device (not a character device)")]
    public void AVhostFdThatIsNotAVhostDeviceIsOneLineAndLeavesNothing(string label, string message)
    {
        var s = LabSession.Instance.Ended("vhost-bad-fd", output);
        Assert.Equal("1", s.GuestMarker($"HOST-BAD-{label}-RC"));
        Assert.Equal("1", s.GuestMarker($"HOST-BAD-{label}-LINES"));
        Assert.Equal(message, "stratovirt: " + s.GuestMarker($"HOST-BAD-{label}-ERR stratovirt:"));
        Assert.Equal("gone", s.GuestMarker($"HOST-BAD-{label}-TAP"));
        Assert.Equal("none", s.GuestMarker($"HOST-BAD-{label}-FILES"));
    }
}
