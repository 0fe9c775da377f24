namespace StratoVirt.Tests.Lab;

/// <summary>Block hotplug as Kata drives it, and net hotplug, against Debian's kernel in the nested lab (see
/// <see cref="HotplugScenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed class HotplugLabTests
{
    [Fact]
    public void ADiskPluggedUnpluggedAndPluggedBackKeepsWhatTheGuestWrote()
    {
        var s = LabSession.Instance.Log["virtio-hotplug"];
        Assert.True(s.Ended && s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains("GUEST-TEST-END hotplug rc=0"), s.Text);
        Assert.DoesNotContain(s.Output, line => line.StartsWith("HOST-HP-TIMEOUT", StringComparison.Ordinal));
        // At boot the four block slots are empty disks and the net slots' links are down.
        Assert.Equal("0 0 0 0", s.GuestMarker("GUEST-HOTPLUG-SIZES"));
        Assert.Equal("0", s.GuestMarker("GUEST-HOTPLUG-LINK"));
        Assert.Equal("{\"return\":{}}", s.GuestMarker("HOST-HP-ADD"));
        Assert.Equal("{\"return\":{}}", s.GuestMarker("HOST-HP-PLUG"));
        Assert.Equal("32768", s.GuestMarker("GUEST-HOTPLUG-PLUGGED")); // 16 MiB
        Assert.Contains("in use by another VM or drive", s.GuestMarker("HOST-HP-ADD-LOCKED"));
        Assert.Contains("is in use by device 'drive1'", s.GuestMarker("HOST-HP-DEL-IN-USE"));
        // DEVICE_DELETED comes before device_del's reply.
        var unplug = s.Output.Where(l => l.StartsWith("HOST-HP-UNPLUG ", StringComparison.Ordinal)).ToList();
        Assert.True(unplug.Count == 2, s.Text);
        Assert.Contains("\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":\"drive1\",\"path\":\"drive1\"}", unplug[0]);
        Assert.Equal("HOST-HP-UNPLUG {\"return\":{}}", unplug[1]);
        Assert.Equal("0", s.GuestMarker("GUEST-HOTPLUG-EMPTY"));
        Assert.Equal("0", s.GuestMarker("GUEST-HOTPLUG-EMPTY-BYTES"));
        Assert.Equal("{\"return\":{}}", s.GuestMarker("HOST-HP-READD"));
        Assert.Equal("{\"return\":{}}", s.GuestMarker("HOST-HP-REPLUG"));
        Assert.Equal("32768", s.GuestMarker("GUEST-HOTPLUG-REPLUGGED"));
        Assert.Equal("written-through-a-hotplugged-disk", s.GuestMarker("GUEST-HOTPLUG-READBACK"));
    }

    [Fact]
    public void ATapPluggedIntoAnEmptyNetSlotCarriesPingsUntilItIsUnplugged()
    {
        var s = LabSession.Instance.Log["virtio-hotplug-net"];
        Assert.True(s.Ended && s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains("GUEST-TEST-END hotplug-net rc=0"), s.Text);
        Assert.DoesNotContain(s.Output, line => line.StartsWith("HOST-HPN-TIMEOUT", StringComparison.Ordinal));
        Assert.Equal("0", s.GuestMarker("GUEST-HPNET-READY")); // the empty slot: link down
        Assert.Equal("{\"return\":{}}", s.GuestMarker("HOST-HPN-ADD"));
        Assert.Equal("{\"return\":{}}", s.GuestMarker("HOST-HPN-PLUG"));
        Assert.Equal("1", s.GuestMarker("GUEST-HPNET-CARRIER"));
        Assert.Equal("rc=0", s.GuestMarker("GUEST-HPNET-PING"));
        var unplug = s.Output.Where(l => l.StartsWith("HOST-HPN-UNPLUG ", StringComparison.Ordinal)).ToList();
        Assert.True(unplug.Count == 2, s.Text);
        Assert.Contains("\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":\"net1\"", unplug[0]);
        Assert.Equal("0", s.GuestMarker("GUEST-HPNET-UNPLUGGED"));
    }
}
