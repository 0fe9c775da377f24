using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Debian's cloud kernel using our virtio-mmio devices inside the nested lab.</summary>
[Trait("Level", "Lab")]
public sealed class VirtioLabTests(ITestOutputHelper output)
{
    private LabScenario Run(string name, bool guestFinishes = true)
    {
        var s = LabSession.Instance.Ended(name, output);
        Assert.True(s.ExitCode == 0, s.Text);
        if (guestFinishes) Assert.True(s.OutputContains($"GUEST-TEST-END {TestName(name)} rc=0"), s.Text);
        return s;
    }

    private static long Number(LabScenario s, string marker) =>
        long.TryParse(s.GuestMarker(marker), out long n) ? n : throw new Xunit.Sdk.XunitException($"no number after {marker}:\n{s.Text}");

    private static string TestName(string scenario) => scenario["virtio-".Length..].Split('-')[0];

    [Fact]
    public void RngFeedsTheGuestsHwRandom()
    {
        var s = Run("virtio-rng");
        Assert.Equal("virtio_rng.0", s.GuestMarker("GUEST-RNG-CURRENT"));
        Assert.Equal("256", s.GuestMarker("GUEST-RNG-BYTES"));
        // 256 random bytes show well over 100 distinct values; a device returning zeros or a pattern would not.
        Assert.True(int.Parse(s.GuestMarker("GUEST-RNG-DISTINCT")!) > 100, s.Text);
        // Driver unbind and bind: the device is reset and set up again, and works.
        Assert.Equal("virtio0", s.GuestMarker("GUEST-RNG-REBOUND"));
        Assert.Equal("64", s.GuestMarker("GUEST-RNG-BYTES-AFTER-REBIND"));
    }

    [Fact]
    public void NetCarriesPingAndSixteenMebibytesEachWayThroughATap() => AssertNetWorked(Run("virtio-net"), "52:54:00:12:34:56");

    /// <summary>The net test (scripts/lab/guest/tests/net.sh) saw its MAC, pinged the host and moved 16 MiB each
    /// way intact.</summary>
    internal static void AssertNetWorked(LabScenario s, string mac)
    {
        Assert.Equal(mac, s.GuestMarker("GUEST-NET-MAC"));
        Assert.Equal("ok", s.GuestMarker("GUEST-NET-PING"));
        string hostBlob = s.GuestMarker("HOST-NET-SERVING")!, guestBlob = s.GuestMarker("GUEST-NET-SERVING")!;
        Assert.Equal($"16777216 {hostBlob}", s.GuestMarker("GUEST-NET-GOT"));
        Assert.Equal($"16777216 {guestBlob}", s.GuestMarker("HOST-NET-GOT"));
        Assert.NotEqual(hostBlob, guestBlob);
    }

    [Fact]
    public void ConsoleCarriesTheGuestsWritesAndTheKernelConsoleOnHvc0()
    {
        var s = Run("virtio-console");
        Assert.Equal("/dev/hvc0", s.GuestMarker("GUEST-HVC"));
        Assert.True(s.OutputContains("HOST-HVC0 hello-from-hvc0 42"), s.Text);
        // console=hvc0: once the driver registers hvc0 the kernel writes its log there too.
        Assert.Contains(s.Output, line => line.StartsWith("HOST-HVC0 [", StringComparison.Ordinal) && line.EndsWith("] kmsg-via-hvc0", StringComparison.Ordinal));
    }

    [Fact]
    public void BlkRootFilesystemKeepsSixtyFourMebibytesAcrossARemountAndReadOnlyDrivesRefuseWrites() =>
        AssertBlkRootWorked(Run("virtio-blk"));

    /// <summary>The blk test (scripts/lab/guest/tests/blk.sh) ran on an ext4 root on /dev/vda: 64 MiB written and
    /// read back after a read-only remount, and the read-only /dev/vdb refused writes, also when forced.</summary>
    internal static void AssertBlkRootWorked(LabScenario s)
    {
        Assert.Equal("/dev/vda ext4", s.GuestMarker("GUEST-ROOT"));
        Assert.Equal("LABROOT", s.GuestMarker("GUEST-BLK-VDA-SERIAL"));
        string written = s.GuestMarker("GUEST-BLK-WRITTEN")!;
        Assert.StartsWith("67108864 ", written);
        Assert.Equal("ok", s.GuestMarker("GUEST-BLK-REMOUNT-RO"));
        Assert.Equal(written["67108864 ".Length..], s.GuestMarker("GUEST-BLK-REREAD"));
        Assert.Equal("refused", s.GuestMarker("GUEST-BLK-ROFS-WRITE"));
        Assert.Equal("1", s.GuestMarker("GUEST-BLK-VDB-RO"));
        Assert.Equal((8 * 1024 * 1024 / 512).ToString(), s.GuestMarker("GUEST-BLK-VDB-SECTORS"));
        Assert.Equal("STRATOVIRT-RO-DISK", s.GuestMarker("GUEST-BLK-VDB-HEAD"));
        Assert.Equal("refused", s.GuestMarker("GUEST-BLK-VDB-WRITE"));
        Assert.Equal("refused", s.GuestMarker("GUEST-BLK-VDB-FORCED-WRITE"));
        Assert.Equal("unchanged", s.GuestMarker("HOST-BLK-RO-IMAGE"));
    }

    [Fact]
    public void BalloonInflatedThroughQmpGivesMemoryBackToTheHost()
    {
        var s = Run("virtio-balloon", guestFinishes: false);
        Assert.True(s.OutputContains("GUEST-BALLOON-FILLED"), s.Text);
        Assert.InRange(Number(s, "HOST-BALLOON-ACTUAL"), 120_000_000, 140_000_000);
        long before = Number(s, "HOST-BALLOON-RSS-BEFORE-KB"), after = Number(s, "HOST-BALLOON-RSS-AFTER-KB");
        output.WriteLine($"VMM RSS before {before} KiB, after inflating by 128 MiB {after} KiB");
        // 128 MiB went into the balloon: the guest touched about 200 MiB, and afterwards the VMM holds little more
        // than the 128 MiB the guest kept.
        Assert.True(before - after > 48 * 1024, s.Text);
        Assert.True(after < 150 * 1024, s.Text);
        // query-cpus on the running VM: both vCPUs with the ids of their host threads.
        string cpus = s.GuestMarker("HOST-QMP-CPUS") ?? "";
        var ids = System.Text.RegularExpressions.Regex.Matches(cpus, "\"thread_id\":([0-9]+)").Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.True(ids.Count == 2 && ids.All(id => id > 0) && ids[0] != ids[1], cpus);
    }

    [Fact]
    public void VsockEchoesBothWaysOverTheUserspaceBackend()
    {
        var s = Run("virtio-vsock");
        Assert.Equal(s.GuestMarker("GUEST-VSOCK-SENT"), s.GuestMarker("GUEST-VSOCK-ECHOED"));
        Assert.Equal(s.GuestMarker("HOST-VSOCK-SENT"), s.GuestMarker("HOST-VSOCK-ECHOED"));
        Assert.Equal("rc=0", s.GuestMarker("GUEST-VSOCK-SERVED"));
        Assert.Equal("removed", s.GuestMarker("HOST-VSOCK-SOCKET"));
    }

    [Fact]
    public void StartPausedThenStopAndContThroughQmp()
    {
        var s = Run("qmp-lifecycle", guestFinishes: false);
        // -S: the kernel did not start (no banner on the console) until cont.
        Assert.Equal("0", s.GuestMarker("HOST-LIFE-KERNEL-LINES-WHILE-S"));
        Assert.Contains("\"status\":\"paused\"", s.GuestMarker("HOST-LIFE-STATUS-S"));
        Assert.Contains("\"status\":\"paused\"", string.Join('\n', s.Output.Where(l => l.StartsWith("HOST-LIFE-STATUS-STOPPED", StringComparison.Ordinal))));
        Assert.Equal("0", s.GuestMarker("HOST-LIFE-TICKS-WHILE-STOPPED"));
        Assert.True(Number(s, "HOST-LIFE-TICKS-AFTER-CONT") >= 3, s.Text);
        // The guest clock stands still while paused: no gap between ticks comes near the 3 s stop.
        var uptimes = s.Output.Where(l => l.StartsWith("GUEST-TICK ", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(uptimes.Count >= 6, s.Text);
        Assert.All(uptimes.Zip(uptimes.Skip(1)), p => Assert.InRange(p.Second - p.First, 0.3, 2.0));
    }
}
