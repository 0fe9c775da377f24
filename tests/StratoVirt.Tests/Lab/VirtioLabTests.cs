using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Debian's cloud kernel using our virtio-mmio devices inside the nested lab.</summary>
[Trait("Level", "Lab")]
public sealed class VirtioLabTests(ITestOutputHelper output)
{
    private LabScenario Run(string name)
    {
        var s = LabSession.Instance.Log[name];
        Assert.True(s.Ended, $"{name} did not finish (log: {LabSession.Instance.LogPath})");
        int attempts = LabSession.Instance.Log.AttemptsOf(name);
        if (attempts > 1) output.WriteLine($"{name} ran {attempts} times (see @@HUNG in {LabSession.Instance.LogPath})");
        Assert.True(s.ExitCode == 0, Text(s));
        Assert.True(s.OutputContains($"GUEST-TEST-END {TestName(name)} rc=0"), Text(s));
        return s;
    }

    private static string TestName(string scenario) => scenario["virtio-".Length..].Split('-')[0];

    private static string Text(LabScenario s) => string.Join('\n', s.Output);

    [Fact]
    public void RngFeedsTheGuestsHwRandom()
    {
        var s = Run("virtio-rng");
        Assert.Equal("virtio_rng.0", s.GuestMarker("GUEST-RNG-CURRENT"));
        Assert.Equal("256", s.GuestMarker("GUEST-RNG-BYTES"));
        // 256 random bytes show well over 100 distinct values; a device returning zeros or a pattern would not.
        Assert.True(int.Parse(s.GuestMarker("GUEST-RNG-DISTINCT")!) > 100, Text(s));
    }

    [Fact]
    public void NetCarriesPingAndSixteenMebibytesEachWayThroughATap()
    {
        var s = Run("virtio-net");
        Assert.Equal("52:54:00:12:34:56", s.GuestMarker("GUEST-NET-MAC"));
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
        Assert.True(s.OutputContains("HOST-HVC0 hello-from-hvc0 42"), Text(s));
        // console=hvc0: once the driver registers hvc0 the kernel writes its log there too, up to the power-off.
        Assert.True(s.OutputContains("HOST-HVC0 [") && s.OutputContains("reboot: Power down"), Text(s));
    }
}
