using StratoVirt.Tests.Unit;

namespace StratoVirt.Tests.Native;

/// <summary>Real KVM VMs on this host running the payload guests through the stratovirt binary.</summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed class PayloadBootTests(PayloadFixture payloads)
{
    private static readonly Dictionary<string, string> InfoLog = new() { ["STRATOVIRT_LOG_LEVEL"] = "info" };

    private static string[] Args(string kernel, params string[] extra) =>
        ["-machine", "microvm", "-kernel", kernel, "-m", "256", "-serial", "stdio", .. extra];

    [Theory]
    [InlineData("bin")]
    [InlineData("bzImage")]
    public void HelloPayloadPrintsAndResetsWithExitZero(string kind)
    {
        var r = VmmProcess.Run(Args(payloads.Get("hello", kind), "-D"), env: InfoLog);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
        Assert.Matches(@"Guest-boot-time = \d+ us \d+ ms, \d+ CPU us \d+ CPU ms \(monotonic \d+ ns\)", r.Stderr);
        Assert.Contains("guest requested a reset", r.Stderr);
    }

    [Fact]
    public void ElfPayloadBootsAtItsEntry()
    {
        using var dir = new TempDir();
        byte[] code = File.ReadAllBytes(payloads.Get("hello"));
        string elf = dir.Write("hello.elf", BootImageTests.MakeElf(0x1000000, 0x1000000, code));
        var r = VmmProcess.Run(Args(elf));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
    }

    [Fact]
    public void RtcPayloadReadsTheHostDate()
    {
        var before = DateTime.UtcNow;
        var r = VmmProcess.Run(Args(payloads.Get("rtc")));
        Assert.True(r.ExitCode == 0, r.ToString());
        var m = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"RTC (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)");
        Assert.True(m.Success, r.ToString());
        var guest = DateTime.ParseExact(m.Groups[1].Value, "yyyy-MM-dd HH:mm:ss", null);
        Assert.InRange(guest, before.AddSeconds(-2), DateTime.UtcNow.AddSeconds(2));
    }

    [Fact]
    public void SecondVcpuComesUpThroughInitSipi()
    {
        var r = VmmProcess.Run(Args(payloads.Get("smp"), "-smp", "2"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("AP up", r.Stdout);
        Assert.Contains("SMP 2 cpus", r.Stdout);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("4")]
    [InlineData("cpus=4,maxcpus=8,sockets=2,cores=2,threads=2")]
    public void VcpuCountsBootTheSamePayload(string smp)
    {
        var r = VmmProcess.Run(Args(payloads.Get("hello"), "-smp", smp));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
    }

    [Fact]
    public void TripleFaultEndsWithAClearErrorAndNonZeroExit()
    {
        var r = VmmProcess.Run(Args(payloads.Get("fault")));
        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Matches("stratovirt: vCPU 0: .*(triple fault|emulate|internal error)", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void UnclaimedMmioReadsAsAllOnes()
    {
        var r = VmmProcess.Run(Args(payloads.Get("mmio-probe")));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("MMIO ff", r.Stdout);
    }

    [Fact]
    public void SerialToFileWritesTheGuestOutput()
    {
        using var dir = new TempDir();
        string log = Path.Combine(dir.Path, "serial.log");
        var r = VmmProcess.Run(["-machine", "microvm", "-kernel", payloads.Get("hello"), "-serial", $"file,path={log}"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", File.ReadAllText(log));
        Assert.DoesNotContain("Hello", r.Stdout);
    }
}
