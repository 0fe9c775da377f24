using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>The ozone-linux scenario (<see cref="OzoneScenarios"/>): a Debian guest booted through ozone, with
/// cgroup v2, in the nested lab.</summary>
[Trait("Level", "Lab")]
public sealed class OzoneLabTests(ITestOutputHelper output)
{
    private LabScenario Scenario() => LabSession.Instance.Ended(OzoneScenarios.Name, output);

    [Fact]
    public void ALinuxGuestBootsInTheSandboxFromItsSourcedDisk()
    {
        var s = Scenario();
        Assert.True(s.ExitCode == 0, s.Text);
        s.AssertMarker("GUEST-OZONE-ROOT", "/dev/vda ext4");
        s.AssertMarker("GUEST-OZONE-WROTE", "written-inside-ozone");
        s.AssertMarker("HOST-OZONE-IMAGE", "written");
        // Seccomp works in the sandbox, where there is no /proc to count threads in.
        Assert.True(s.OutputContains("seccomp: 3 threads confined"), s.Text);
    }

    [Fact]
    public void TheVmmRunsConfinedAsTheGivenIdsInACgroupV2WithTheGivenLimits() => AssertConfined(Scenario(), "oz-root.img");

    /// <summary>What the host script of <see cref="OzoneScenarios.HostScript"/> saw of the sandboxed VMM, whose
    /// chroot holds <paramref name="source"/> among the files passed in; and that -clean-resource left nothing.</summary>
    internal static void AssertConfined(LabScenario s, string source)
    {
        s.AssertMarker("HOST-OZONE-CGROUP-FS", "cgroup2");
        s.AssertMarker("HOST-OZONE-MEMORY-MAX", (512L << 20).ToString());
        s.AssertMarker("HOST-OZONE-CPUSET", "0-1");
        s.AssertMarker("HOST-OZONE-VMM-COMM", "stratovirt");
        s.AssertMarker("HOST-OZONE-VMM-UID", "1000");
        s.AssertMarker("HOST-OZONE-VMM-GID", "1000");
        s.AssertMarker("HOST-OZONE-VMM-CAPEFF", "0000000000000000");
        s.AssertMarker("HOST-OZONE-VMM-CAPBND", "0000000000000000");
        s.AssertMarker("HOST-OZONE-VMM-SECCOMP", "2");
        s.AssertMarker("HOST-OZONE-VMM-NSPID", "1");
        // Its root is the chroot: the binary, its loader and libraries, /dev and the three sources.
        var root = (s.GuestMarker("HOST-OZONE-VMM-ROOT") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("stratovirt", root);
        Assert.Contains(source, root);
        Assert.Contains("dev", root);
        Assert.DoesNotContain("proc", root);
        Assert.DoesNotContain("lab", root);
        s.AssertMarker("HOST-OZONE-CHROOT", "removed");
        s.AssertMarker("HOST-OZONE-CGROUP-DIR", "removed");
    }

    [Fact]
    public void TheSourcedKernelIsInTheChroot()
    {
        var root = (Scenario().GuestMarker("HOST-OZONE-VMM-ROOT") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("oz-kernel", root);
    }
}
